"""On-demand profiling: the layers a search meets that its latency table lacks are timed with
the table's own protocol and added to the table file, so that later searches reuse them.

* **Only this machine's tables.** A table records the machine that timed it (``device``,
  ``cpu``, ``cpu_count``, ``os``, ``onnxruntime``: a :class:`~.runner.Machine`, written by
  ``lut build`` and by the bundle's ``run_lut.py``). A table of another machine (a phone's,
  imported from a bundle) is refused (:class:`ForeignTableError`): its missing layers must be
  timed on that device (``lut bundle --arch``). The kernel release is not compared (a VM's
  changes on reboot).
* **The table's protocol.** :func:`table_profile_settings` reads the table's
  :class:`~.settings.ProfileSettings` (threads, provider, opt level, opset, clock,
  statistic, warm-up, rounds, precision) from its metadata, and
  :func:`~.profiler.build_table` times the keys (the same export, interleaving and sentinel
  as ``lut build``) into a scratch file.
* **The table's timebase.** A machine drifts between a table's build and a search (the VM
  the shipped tables were built on later timed their layers about 3x faster). So up to
  :data:`N_ANCHORS` entries the table already has (the candidate's own layers first) are
  re-timed in the same interleaved chunk, and the new entries are multiplied by the median
  ratio ``table / now`` of those anchors: they stay comparable with the table's other
  entries, and the table's calibration (fitted on end-to-end networks against sums of the
  old entries) keeps applying to the layer sum. The factor is recorded per run.
* **Safe concurrent writes.** Entries are merged into the file under an exclusive lock
  beside it (``.T.json.lock``): re-read, merge (an entry already there wins), write
  atomically; so search workers sharing a table never lose each other's entries.
* **Shipped tables are not written.** A table shipped with the package is extended in a copy
  in the user cache (:func:`extension_path`), tied to the shipped file by its SHA-256 (a new
  release's table starts a new copy).

``metadata.on_demand`` records what was added: the number of entries and runs, first and
last date, the keys, and the last :data:`MAX_EVENTS` runs (keys, anchors, scale, seconds).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mobile_nas.cost.latency.errors import (
    LatencyTableError,
    MissingEntryError,
    TableSettingError,
)
from mobile_nas.cost.latency.predictor import LatencyPrediction, LatencyPredictor
from mobile_nas.cost.latency.profiler import TimingBackend, build_table
from mobile_nas.cost.latency.requirements import table_settings
from mobile_nas.cost.latency.runner import this_machine
from mobile_nas.cost.latency.settings import PRECISIONS, RESUME_FIELDS, ProfileSettings
from mobile_nas.cost.latency.table import (
    LatencyTable,
    LayerLatency,
    shipped_table_name,
    shipped_table_path,
)
from mobile_nas.locking import exclusive_lock, lock_file_for
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.layers import LayerKey

#: Metadata fields that identify the machine a table was timed on (``os`` without the
#: kernel release).
MACHINE_FIELDS = ("device", "cpu", "cpu_count", "os", "onnxruntime")
#: Entries of the table re-timed with every on-demand run to carry its timebase over.
N_ANCHORS = 8
#: Fewer anchors than this (a nearly empty table): new entries are kept unscaled.
MIN_ANCHORS = 3
#: Runs kept in ``metadata.on_demand.events`` (the totals count all of them).
MAX_EVENTS = 20
#: A scale further than this from 1 is reported: the machine has drifted since the build.
DRIFT_REPORT = 0.10


class ForeignTableError(TableSettingError):
    """A table timed on another machine, which this machine must not extend."""


# -- which tables this machine may extend ------------------------------------------------------
def machine_identity(info: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`MACHINE_FIELDS` of ``info`` (table metadata or a :class:`~.runner.Machine`'s
    JSON), ``os`` reduced to system and architecture."""
    out = {f: info.get(f) for f in MACHINE_FIELDS}
    parts = str(out["os"] or "").split()
    out["os"] = f"{parts[0]} {parts[-1]}" if len(parts) >= 2 else (out["os"] or None)
    return out


def machine_mismatches(table: LatencyTable, here: Mapping[str, Any] | None = None
                       ) -> list[tuple[str, object, object]]:
    """``(field, table's value, this machine's)`` for every identity field that differs (a
    field the table does not record differs)."""
    if here is None:
        here = this_machine().to_json()
    have, now = machine_identity(table.metadata), machine_identity(here)
    return [(f, have[f], now[f]) for f in MACHINE_FIELDS if have[f] != now[f]]


def table_profile_settings(table: LatencyTable) -> ProfileSettings:
    """The :class:`ProfileSettings` the table's metadata records (defaults where it records
    none, as for ``lut build --resume``); :class:`LatencyTableError` if this release cannot
    time with them."""
    md = table.metadata
    names = [f.name for f in fields(ProfileSettings) if f.name != "chunk"]
    try:
        return ProfileSettings(**{n: md[n] for n in names if md.get(n) is not None})
    except (TypeError, ValueError) as exc:
        raise LatencyTableError(f"its protocol cannot be timed here: {exc}") from None


def check_extendable(table: LatencyTable, path: str | os.PathLike[str]) -> ProfileSettings:
    """The settings to time ``table``'s missing layers with, after checking that this machine
    may: :class:`ForeignTableError` for another machine's table, :class:`LatencyTableError`
    for a protocol this release cannot time or a folder it cannot write."""
    space = table.space
    bad = machine_mismatches(table)
    if bad:
        diff = ", ".join(f"{f} {h!r} (here {n!r})" for f, h, n in bad)
        raise ForeignTableError(
            "table", "latency table {value!r} was timed on another machine ({diff}), so this "
            "one cannot add its missing layers (the timings would not mix): time them on "
            "that device with 'mobile-nas lut bundle --space {space} --arch ARCH --out "
            "bundle.zip' and 'mobile-nas lut import', or build a table of this machine with "
            "'mobile-nas lut build --space {space} --arch ARCH --out T.json' and pass "
            "{what} T.json", value=str(path), diff=diff, space=space)
    try:
        settings = table_profile_settings(table)
    except LatencyTableError as exc:
        raise LatencyTableError(f"cannot add layers to latency table {str(path)!r}: "
                                f"{exc}") from None
    target = extension_path(space, path)
    folder = next((p for p in (target.parent, *target.parent.parents) if p.exists()),
                  target.parent)
    if not os.access(folder, os.W_OK):
        raise TableSettingError("table", "cannot add layers to latency table {value!r}: "
                                "folder {folder!r} is not writable (copy the table somewhere "
                                "writable and pass {what})", value=str(path),
                                folder=str(folder))
    return settings


# -- where the entries go ----------------------------------------------------------------------
def table_cache_dir() -> Path:
    """Where shipped tables are extended: ``$XDG_CACHE_HOME/mobile-nas/latency_tables``
    (default ``~/.cache/...``)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "mobile-nas" / "latency_tables"


def _shipped(space: str, path: str | os.PathLike[str]) -> tuple[Path, str] | None:
    """The shipped table ``path`` is (at any precision) and its precision, or None."""
    for precision in PRECISIONS:
        shipped = shipped_table_path(space, precision)
        if shipped is not None and Path(path).resolve() == Path(shipped).resolve():
            return Path(shipped), precision
    return None


def extension_path(space: str, path: str | os.PathLike[str]) -> Path:
    """The file on-demand entries of the table at ``path`` go to: the table itself, or for a
    table shipped for ``space`` its copy in :func:`table_cache_dir` (named like it:
    ``<space>.json``, ``<space>_int8.json``)."""
    shipped = _shipped(space, path)
    if shipped is None:
        return Path(path)
    return table_cache_dir() / shipped_table_name(space, shipped[1])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extended_shipped_table(space: str, precision: str = "fp32") -> Path | None:
    """The cache copy of the table shipped for ``space`` at ``precision`` that searches
    extended on demand, if it exists and was copied from the shipped file as it is now
    (else None)."""
    shipped = shipped_table_path(space, precision)
    if shipped is None:
        return None
    copy = table_cache_dir() / shipped_table_name(space, precision)
    if not copy.is_file():
        return None
    try:
        base = (LatencyTable.load(copy).metadata.get("on_demand") or {}).get("base") or {}
    except LatencyTableError:
        return None
    return copy if base.get("sha256") == _sha256(Path(shipped)) else None


def resolve_table(space_name: str, *candidates: str | os.PathLike[str] | None,
                  precision: str = "fp32") -> str | os.PathLike[str] | None:
    """The latency table to use for ``space_name``: the first of ``candidates`` given (an
    explicit ``--table``, a run's recorded table; empty ones are skipped) as is, else the
    table shipped for the space at ``precision`` (:func:`~.table.shipped_table_path`, or its copy
    that ``search`` extended on demand, when there is one for this very shipped file),
    else its shipped fp32 table (which a request for another precision then refuses, naming the
    ``lut build`` command that makes one), else None."""
    for path in candidates:
        if path:
            return path
    extended = extended_shipped_table(space_name, precision)  # extended by searches
    if extended is not None:
        return extended
    return shipped_table_path(space_name, precision) or shipped_table_path(space_name)


def prepare_extension(space: str, path: str | os.PathLike[str]) -> Path:
    """:func:`extension_path`, created for a shipped table (a copy of it, or a fresh copy
    if the shipped table changed since the copy was made); the path to read and extend."""
    found = _shipped(space, path)
    target = extension_path(space, path)
    if found is None:
        return target
    shipped = found[0]
    digest = _sha256(shipped)
    target.parent.mkdir(parents=True, exist_ok=True)
    with table_lock(target):
        if target.exists():
            with contextlib.suppress(LatencyTableError):
                base = (LatencyTable.load(target).metadata.get("on_demand") or {}).get("base")
                if (base or {}).get("sha256") == digest:
                    return target
        table = LatencyTable.load(shipped)
        record = {**_empty_record(), "base": {"path": str(shipped), "sha256": digest}}
        table.with_metadata(on_demand=record).save(target)
    return target


def table_lock(path: str | os.PathLike[str]) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock on the table at ``path`` (``.<name>.lock`` beside it)."""
    return exclusive_lock(lock_file_for(path))


# -- timing and merging ------------------------------------------------------------------------
@dataclass(frozen=True)
class OnDemandRun:
    """One on-demand profiling: the keys timed (``added``: those not added meanwhile by
    another worker), the anchors re-timed and the ``scale`` applied to the new entries (the
    anchors' ``ratios``, table / now), the seconds it took, and the table as merged."""

    keys: tuple[str, ...]
    added: tuple[str, ...]
    anchors: tuple[str, ...]
    ratios: tuple[float, ...]
    scale: float
    seconds: float
    table: LatencyTable

    def event(self, arch: str | None) -> dict[str, Any]:
        """The record of this run in ``metadata.on_demand.events``."""
        return {"date": _now(), "arch": arch, "timed": len(self.keys), "keys": len(self.added),
                "anchors": len(self.anchors), "scale": round(self.scale, 4),
                "ratio_range": [round(min(self.ratios), 4), round(max(self.ratios), 4)]
                if self.ratios else None, "seconds": round(self.seconds, 1)}


def choose_anchors(table: LatencyTable, preferred: Sequence[str] = (),
                   n: int = N_ANCHORS) -> list[str]:
    """Up to ``n`` ids of entries of ``table``: those of ``preferred`` it has (in order),
    then entries spread evenly over its sorted keys (deterministic)."""
    out = list(dict.fromkeys(k for k in preferred if k in table.entries))[:n]
    ids = sorted(table.entries)
    for i in range(n):
        if len(out) >= min(n, len(ids)):
            break
        k = ids[i * len(ids) // n]
        if k not in out:
            out.append(k)
    return out


def _scaled(e: LayerLatency, s: float) -> LayerLatency:
    return LayerLatency(median_ms=e.median_ms * s, iqr_ms=e.iqr_ms * s, n=e.n,
                        min_ms=None if e.min_ms is None else e.min_ms * s)


def profile_keys(path: str | os.PathLike[str], keys: Sequence[LayerKey | str], *,
                 arch: Architecture | None = None,
                 backend: TimingBackend | None = None) -> OnDemandRun:
    """Times the ``keys`` the table at ``path`` lacks with its protocol, scales them to its
    timebase (see module) and merges them into the file; ``backend`` replaces onnxruntime
    (tests). The caller has checked the table (:func:`check_extendable`)."""

    path = Path(path)
    table = LatencyTable.load(path)
    settings = table_profile_settings(table)
    todo = table.missing(keys)
    start = time.monotonic()
    if not todo:
        return OnDemandRun((), (), (), (), 1.0, 0.0, table)
    own = [k.id for k in arch.search_space.runtime_layers(arch)] if arch is not None else []
    anchors = choose_anchors(table, own)
    with tempfile.TemporaryDirectory(prefix="mobile-nas-on-demand-") as tmp:
        timed = build_table(table.space, [LayerKey.from_id(k) for k in [*anchors, *todo]],
                            Path(tmp) / "timed.json", settings=settings, progress=False,
                            backend=backend)
    stat = table.statistic
    ratios = tuple(table.entries[a].value(stat) / timed.entries[a].value(stat)
                   for a in anchors)
    scale = float(statistics.median(ratios)) if len(ratios) >= MIN_ANCHORS else 1.0
    new = {k: _scaled(timed.entries[k], scale) for k in todo}
    run = OnDemandRun(tuple(todo), (), tuple(anchors), ratios, scale,
                      time.monotonic() - start, table)
    merged, added = add_entries(path, new, settings=settings,
                                event=run.event(arch.to_string() if arch else None))
    return OnDemandRun(run.keys, tuple(added), run.anchors, ratios, scale, run.seconds, merged)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _empty_record() -> dict[str, Any]:
    return {"entries": 0, "runs": 0, "first": None, "last": None, "seconds": 0.0, "keys": [],
            "events": []}


def add_entries(path: str | os.PathLike[str], entries: Mapping[str, LayerLatency], *,
                settings: ProfileSettings,
                event: Mapping[str, Any]) -> tuple[LatencyTable, list[str]]:
    """Merges ``entries`` into the table at ``path`` under :func:`table_lock` (re-read, keep
    entries already there, record ``event`` in ``metadata.on_demand``, write atomically);
    returns the table written and the ids it gained. Refuses a file whose protocol is no
    longer ``settings`` (replaced meanwhile)."""
    path = Path(path)
    with table_lock(path):
        current = LatencyTable.load(path)
        have = table_settings(current)
        clash = [f for f in RESUME_FIELDS if have[f] != getattr(settings, f)]
        if clash:
            raise LatencyTableError(f"latency table {str(path)!r} changed while its layers "
                                    f"were timed: {clash[0]} is now {have[clash[0]]!r}, not "
                                    f"{getattr(settings, clash[0])!r}; nothing was added")
        added = sorted(k for k in entries if k not in current.entries)
        rec = {**_empty_record(), **dict(current.metadata.get("on_demand") or {})}
        rec.update(entries=rec["entries"] + len(added), runs=rec["runs"] + 1,
                   first=rec["first"] or event["date"], last=event["date"],
                   seconds=round(rec["seconds"] + float(event.get("seconds") or 0.0), 1),
                   keys=sorted({*rec["keys"], *added}),
                   events=[*rec["events"], {**event, "keys": len(added)}][-MAX_EVENTS:])
        table = current.with_entries({k: entries[k] for k in added})
        table = table.with_metadata(on_demand=rec, num_keys=len(table))
        table.save(path)
    return table, added


# -- what a search uses ------------------------------------------------------------------------
class OnDemandPredictor:
    """Predicts with the table at ``path`` and first profiles the layers an architecture
    needs that it lacks (:func:`profile_keys`), re-reading the file so that entries other
    workers added are used rather than timed again. ``report`` receives one line per
    profiling run (and one about the machine's drift); ``backend`` replaces onnxruntime."""

    def __init__(self, path: str | os.PathLike[str], *, backend: TimingBackend | None = None,
                 report: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.backend, self.report = backend, report
        self.runs: list[OnDemandRun] = []
        self._stamp: tuple[int, int] | None = None
        self._drift_reported = False
        self._reload()

    @property
    def table(self) -> LatencyTable:
        return self.predictor.table

    def _reload(self, table: LatencyTable | None = None) -> None:
        st = self.path.stat()
        if table is None and self._stamp == (st.st_mtime_ns, st.st_size):
            return
        self.predictor = LatencyPredictor(table or LatencyTable.load(self.path),
                                          table_path=self.path)
        self._stamp = (st.st_mtime_ns, st.st_size)

    def predict(self, arch: Architecture) -> LatencyPrediction:
        try:
            return self.predictor.predict(arch)
        except MissingEntryError:
            pass
        self._reload()
        keys = arch.search_space.runtime_layers(arch)
        if self.table.missing(keys):
            run = profile_keys(self.path, keys, arch=arch, backend=self.backend)
            self._reload(run.table)
            if run.keys:  # else another worker had added them meanwhile
                self.runs.append(run)
                self._tell(run)
        return self.predictor.predict(arch)

    def predict_ms(self, arch: Architecture) -> float:
        return float(self.predict(arch).total_ms)

    def _tell(self, run: OnDemandRun) -> None:
        if self.report is None:
            return
        self.report(f"latency table: timed {len(run.keys)} missing layers in "
                    f"{run.seconds:.1f} s (with {len(run.anchors)} of its entries, scale "
                    f"x{run.scale:.3f}); {self.path} now has {len(run.table)} entries")
        if not self._drift_reported and abs(run.scale - 1) > DRIFT_REPORT:
            self._drift_reported = True
            md = run.table.metadata
            self.report(f"latency table: this machine times the table's layers "
                        f"{1 / run.scale:.2f}x as long as when it was built "
                        f"({md.get('date', 'date unknown')}); new entries are scaled by "
                        f"{run.scale:.3f} to match the others (anchor ratios "
                        f"{min(run.ratios):.2f}-{max(run.ratios):.2f})")


def summary(table: LatencyTable) -> str | None:
    """One line on the entries searches added (None if none)."""
    rec = table.metadata.get("on_demand") or {}
    if not rec.get("runs"):
        return None
    last = (rec.get("events") or [{}])[-1]
    base = rec.get("base")
    return (f"{rec['entries']} entries added on demand by {rec['runs']} search profiling "
            f"runs ({rec['seconds']} s), {rec['first']} to {rec['last']}; last run scaled "
            f"its entries by {last.get('scale', 1.0)} to the table's timebase"
            + (f"; an extension of {base['path']}" if base else ""))
