"""The raw run store: JSON lines appended under a file lock, claims shared by processes.

Raw runs are JSON lines, one complete record per line (each with a unique ``key``), appended
under an exclusive ``flock`` and fsynced. A process claims a run before starting it
(``.claims/<stem>/``; a claim of a dead process is taken over), so several processes share
the work, and killing one loses only its run in progress; a rerun skips every stored run.
:meth:`RunStore.pack` moves the stored lines into a gzip part (``<stem>.part-NNN.jsonl.gz``,
read like the live file) before they are committed. Nothing here knows what a run is: any
record with a ``key`` and any plan of objects with a ``key`` attribute.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from mobile_nas.atomic import atomic_path
from mobile_nas.locking import exclusive_lock

CLAIM_TTL_S = 3600  # a claim older than this (of another host) is taken over


class Keyed(Protocol):
    @property
    def key(self) -> str: ...


K = TypeVar("K", bound=Keyed)


class RunStore:
    """Raw run records of one phase, one JSON object a line (see the module docstring).

    Appends happen under an exclusive ``flock`` and are fsynced; a line torn by a kill is
    ignored (and its run redone). Claims (``.claims/<phase>/<hash>``) keep processes that
    share the store from running the same run; a claim whose process is dead (same host) or
    older than ``CLAIM_TTL_S`` is taken over. :meth:`pack` moves the appended lines into a
    gzip part (``<stem>.part-NNN.jsonl.gz``, read like the live file) to keep the committed
    store small; processes sharing the store notice (the live file is a new inode) and
    re-read.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_path = self.path.parent / f".{self.path.stem}.lock"
        self.claims = self.path.parent / ".claims" / self.path.stem
        self.claims.mkdir(parents=True, exist_ok=True)
        self._offset = 0
        self._inode: tuple[int | None, int] | None = None  # None: nothing read yet
        self._records: dict[str, dict[str, Any]] = {}
        self.torn = 0

    def parts(self) -> list[Path]:
        return sorted(self.path.parent.glob(f"{self.path.stem}.part-*.jsonl.gz"))

    def _read_lines(self, data: bytes) -> None:
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                self.torn += 1  # a write cut by a kill: its run was not recorded
                continue
            self._records.setdefault(rec["key"], rec)

    def pack(self) -> int:
        """Moves every complete line of the live file into a new gzip part and empties the
        live file (a torn last line is dropped: its run was not recorded). Returns the
        number of lines packed. A kill between the two steps leaves records in both places,
        which reading de-duplicates by key."""
        import gzip

        with self._locked():
            data = self.path.read_bytes() if self.path.exists() else b""
            end = data.rfind(b"\n")
            if end < 0:
                return 0
            lines = data[:end + 1]
            numbers = [int(p.name.split(".part-")[1].split(".")[0]) for p in self.parts()]
            part = self.path.parent / (f"{self.path.stem}.part-"
                                       f"{max(numbers, default=-1) + 1:03d}.jsonl.gz")
            with atomic_path(part) as tmp:
                tmp.write_bytes(gzip.compress(lines, compresslevel=9, mtime=0))
            with atomic_path(self.path) as tmp:
                tmp.write_bytes(b"")
            return lines.count(b"\n")

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return exclusive_lock(self.lock_path)

    def _refresh(self) -> None:
        import gzip

        # the live file's inode and the parts: a pack makes a new live file and a new part
        inode = (self.path.stat().st_ino if self.path.exists() else None, len(self.parts()))
        if inode != self._inode:  # first read, or packed by some process: read it all
            self._records, self._offset, self.torn, self._inode = {}, 0, 0, inode
            for part in self.parts():
                self._read_lines(gzip.decompress(part.read_bytes()))
        if inode[0] is None:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n")
        if end < 0:
            return
        self._read_lines(data[:end])
        self._offset += end + 1

    def records(self) -> list[dict[str, Any]]:
        self._refresh()
        return list(self._records.values())

    def done(self) -> set[str]:
        self._refresh()
        return set(self._records)

    def _claim_path(self, key: str) -> Path:
        return self.claims / hashlib.sha1(key.encode()).hexdigest()

    @staticmethod
    def _stale(path: Path) -> bool:
        try:
            info = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return True
        if time.time() - float(info.get("time", 0)) > CLAIM_TTL_S:
            return True
        if info.get("host") != socket.gethostname():
            return False
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def claim_next(self, plan: Sequence[K]) -> K | None:
        """Claims the first run of ``plan`` that is neither stored nor claimed."""
        with self._locked():
            done = self.done()
            for spec in plan:
                if spec.key in done:
                    continue
                path = self._claim_path(spec.key)
                if path.exists() and not self._stale(path):
                    continue
                path.write_text(json.dumps({"key": spec.key, "host": socket.gethostname(),
                                            "pid": os.getpid(), "time": time.time()}))
                return spec
        return None

    def release(self, key: str) -> None:
        self._claim_path(key).unlink(missing_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._locked():
            with open(self.path, "ab") as fh:
                if fh.tell() > 0:
                    with open(self.path, "rb") as rd:
                        rd.seek(-1, os.SEEK_END)
                        if rd.read(1) != b"\n":  # a torn last line: end it first
                            fh.write(b"\n")
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self.release(record["key"])


def pack_phase(path: Path, what: str) -> int:
    """A script's ``pack`` phase: the runs stored so far in ``path`` move into a gzip part
    (before committing them); prints how many ``what`` were packed. Exit status 0."""
    print(f"{RunStore(path).pack()} {what} packed")
    return 0
