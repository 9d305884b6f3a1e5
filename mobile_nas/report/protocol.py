"""Pre-registered comparison protocols: a ``protocol.json`` committed before the first run.

A comparison benchmark states in advance what it runs and how it decides: seeds, epochs,
budgets, references, the selection rule, the statistical test and the decision rule, and the
digests of the supernet and latency table it runs with. The git commit that introduced the file
is the record of when it was fixed (``git log --diff-filter=A``); a protocol edited after
that commit is refused (a new protocol is a new file and a new page). :meth:`RegisteredProtocol.
check_run` refuses a run outside the protocol: a seed or budget it does not list, other
artefacts, or a start before the protocol's commit.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mobile_nas.cost.latency import shipped_table_path
from mobile_nas.errors import MobileNasError
from mobile_nas.jsonrecord import record_kwargs
from mobile_nas.pretrained import pretrained_supernet_path

PROTOCOL_SCHEMA = 1


class ProtocolError(MobileNasError):
    """A protocol file that cannot be used, or a run outside its protocol."""


@dataclass(frozen=True)
class Protocol:
    """What a comparison runs and how it decides, fixed before its first run.

    ``seeds`` maps a kind of seed (``search``, ``training``) to the allowed values; ``budgets``
    are evaluation budgets (empty: the benchmark has none); ``artifacts`` maps an artefact
    (``supernet``, ``table``) to the SHA-256 of the file every run must use."""

    schema_version: int
    benchmark: str
    question: str
    space: str
    seeds: dict
    epochs: int
    budgets: list
    strategies: list
    references: list
    latency_target: str
    artifacts: dict
    recipe: dict
    selection_rule: str
    statistical_test: str
    decision_rule: str
    timing: dict = field(default_factory=dict)
    notes: str = ""


@dataclass(frozen=True)
class RegisteredProtocol:
    """A protocol with its place in git: the commit that added it and that commit's time."""

    protocol: Protocol
    path: Path
    commit: str
    committed_at: datetime

    def stamp(self) -> dict[str, str]:
        """What a report prints next to its result."""
        return {"protocol": self.path.name, "protocol_commit": self.commit,
                "protocol_committed_at": self.committed_at.isoformat()}

    def check_run(self, *, seeds: Mapping[str, int], started_at: str,
                  budget: int | None = None, artifacts: Mapping[str, str] | None = None,
                  what: str = "run") -> None:
        """Raises :class:`ProtocolError` (one line naming ``what``) unless the run is inside
        the protocol: every seed listed under its kind, the budget listed, the artefacts'
        digests those of the protocol, and ``started_at`` (ISO 8601) not before its commit."""
        p = self.protocol
        for kind, seed in seeds.items():
            allowed = p.seeds.get(kind)
            if allowed is None or seed not in allowed:
                raise ProtocolError(
                    f"{what}: {kind} seed {seed} is outside protocol {self.path.name} (allowed: "
                    f"{allowed}); a new seed is a new protocol")
        if budget is not None and budget not in p.budgets:
            raise ProtocolError(f"{what}: budget {budget} is outside protocol {self.path.name} "
                                f"(allowed: {p.budgets})")
        for name, digest in (artifacts or {}).items():
            want = p.artifacts.get(name)
            if want is not None and digest != want:
                raise ProtocolError(f"{what}: {name} sha256 {digest[:12]} is not the protocol's "
                                    f"{want[:12]} ({self.path.name}): runs never mix artefacts")
        started = _parse_time(started_at, what)
        if started < self.committed_at:
            raise ProtocolError(
                f"{what}: started {started.isoformat()}, before protocol {self.path.name} was "
                f"committed ({self.commit[:10]}, {self.committed_at.isoformat()})")


def load_protocol(path: str | Path) -> RegisteredProtocol:
    """Reads a protocol file and finds the commit that added it. Raises
    :class:`ProtocolError` for a malformed file, one git does not have, or one changed since."""
    path = Path(path).resolve()
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"cannot read protocol {path}: {exc}") from None
    protocol = Protocol(**record_kwargs(Protocol, data, what=f"protocol {path.name}",
                                        error=ProtocolError))
    if protocol.schema_version != PROTOCOL_SCHEMA:
        raise ProtocolError(f"protocol {path.name}: schema_version {protocol.schema_version} "
                            f"(this version reads {PROTOCOL_SCHEMA})")
    for kind, seeds in protocol.seeds.items():
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
            raise ProtocolError(f"protocol {path.name}: seeds[{kind!r}] must be a list of ints")
    commit, when = introducing_commit(path)
    committed = _git(path.parent, "show", f"{commit}:./{path.name}", binary=True)
    if committed != path.read_bytes():
        raise ProtocolError(f"protocol {path.name} changed after commit {commit[:10]} added it: "
                            f"a changed protocol is a new file (and a new page)")
    return RegisteredProtocol(protocol, path, commit, when)


def introducing_commit(path: Path) -> tuple[str, datetime]:
    """(hash, committer time) of the commit that added ``path`` (the latest such commit)."""
    out = str(_git(path.parent, "log", "--diff-filter=A", "--format=%H %cI", "--", path.name))
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if not lines:
        raise ProtocolError(f"protocol {path.name} is not committed: commit it before the "
                            f"first run (the commit is the record)")
    commit, when = lines[0].split(" ", 1)
    return commit, datetime.fromisoformat(when)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shipped_artifacts(space: str) -> dict[str, str]:
    """SHA-256 of the space's shipped ``supernet`` (if one ships) and latency ``table``: what
    a search with the defaults runs with, recorded by every search benchmark."""
    out = {}
    supernet = pretrained_supernet_path(space)
    if supernet is not None:
        out["supernet"] = file_sha256(supernet)
    table = shipped_table_path(space)
    if table is not None:
        out["table"] = file_sha256(table)
    return out


def require_same(records: Mapping[str, Mapping[str, Any]], keys: tuple[str, ...]) -> None:
    """Raises :class:`ProtocolError` when ``records`` (run name -> its recorded values)
    disagree on any of ``keys`` (e.g. the digests of the supernet and table they used)."""
    first: dict[str, tuple[str, Any]] = {}
    for name, rec in records.items():
        for key in keys:
            value = rec.get(key)
            if key not in first:
                first[key] = (name, value)
            elif value != first[key][1]:
                other, seen = first[key]
                raise ProtocolError(f"runs {other} and {name} differ in {key} ({str(seen)[:12]} vs "
                                    f"{str(value)[:12]}): results of different artefacts are "
                                    f"never mixed; rerun one or report them apart")


def _parse_time(text: str, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ProtocolError(f"{what}: start time {text!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise ProtocolError(f"{what}: start time {text!r} has no time zone")
    return when


def _git(cwd: Path, *args: str, binary: bool = False) -> bytes | str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True)
    except FileNotFoundError:
        raise ProtocolError("git is needed to read a protocol's commit") from None
    except subprocess.CalledProcessError as exc:
        msg = exc.stderr.decode(errors="replace").strip().splitlines()
        raise ProtocolError(f"git {args[0]} in {cwd}: {msg[-1] if msg else exc}") from None
    return done.stdout if binary else done.stdout.decode()
