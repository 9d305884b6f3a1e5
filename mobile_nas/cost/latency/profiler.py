"""Builds latency tables: export each layer to ONNX, time all of them interleaved.

Keys are processed in chunks; inside a chunk, repeats are interleaved across keys (see
:mod:`.runner`), and after each chunk the partial table is written atomically, so a killed
build resumes (``resume=True``) without losing a finished chunk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mobile_nas import __version__
from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.export import export_layer_onnx
from mobile_nas.cost.latency.measure import load_session
from mobile_nas.cost.latency.runner import device_info, summarize, time_interleaved
from mobile_nas.cost.latency.table import LatencyTable, LayerLatency
from mobile_nas.space.layers import LayerKey
from mobile_nas.torch_onnx import DEFAULT_OPSET


@dataclass(frozen=True)
class ProfileSettings:
    """How layers are timed; recorded in the table's metadata."""

    threads: int = 1
    provider: str = "CPUExecutionProvider"
    opt_level: str = "all"
    opset: int = DEFAULT_OPSET
    warmup: int = 5
    rounds: int = 10
    runs_per_round: int = 3
    chunk: int = 32
    clock: str = "wall"
    statistic: str = "median"

    def metadata(self) -> dict:
        return {"provider": self.provider, "threads": self.threads, "opt_level": self.opt_level,
                "clock": self.clock, "statistic": self.statistic,
                "opset": self.opset, "warmup": self.warmup, "rounds": self.rounds,
                "runs_per_round": self.runs_per_round}


#: Settings that must match for ``resume`` to extend an existing table.
_RESUME_FIELDS = ("provider", "threads", "opt_level", "opset", "clock", "statistic", "rounds",
                  "runs_per_round")


def table_metadata(settings: ProfileSettings, **extra) -> dict:
    return {**device_info(), **settings.metadata(), "mobile_nas_version": __version__,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


def time_layers(keys: Sequence[LayerKey], settings: ProfileSettings) -> dict[str, LayerLatency]:
    """Exports and times ``keys`` together (one interleaved chunk)."""
    from mobile_nas.cost.latency.measure import _check_clock

    _check_clock(settings.clock, settings.threads)
    sessions = {k.id: load_session(export_layer_onnx(k, opset=settings.opset),
                                   threads=settings.threads, provider=settings.provider,
                                   opt_level=settings.opt_level) for k in keys}
    times = time_interleaved(sessions, warmup=settings.warmup, rounds=settings.rounds,
                             runs_per_round=settings.runs_per_round, clock_name=settings.clock)
    return {kid: LayerLatency(**summarize(t)) for kid, t in times.items()}


def build_table(space: str, keys: Sequence[LayerKey], out: str | os.PathLike, *,
                settings: ProfileSettings = ProfileSettings(), resume: bool = False,
                restricted_to: Sequence[str] | None = None, progress: bool = True,
                on_chunk: Callable[[LatencyTable], None] | None = None) -> LatencyTable:
    """Profiles ``keys`` into the table at ``out`` (written atomically after every chunk).

    With ``resume``, entries already in ``out`` are kept and not re-timed; the settings must
    match the existing table's. ``restricted_to`` (arch strings) is recorded in the metadata
    when the keys are a subset of the space.
    """
    from tqdm import tqdm

    out = Path(out)
    if not out.parent.is_dir():
        raise LatencyTableError(f"output folder {out.parent} does not exist")
    meta = table_metadata(settings, source="mobile-nas lut build",
                          restricted_to_archs=list(restricted_to) if restricted_to else None)
    table = LatencyTable(space=space, metadata=meta)
    elapsed = 0.0
    if resume and out.exists():
        old = LatencyTable.load(out)
        clash = [f for f in _RESUME_FIELDS if old.metadata.get(f) != meta[f]]
        if old.space != space or clash:
            raise LatencyTableError(
                f"cannot resume {out}: it was built for space {old.space!r} with "
                + ", ".join(f"{f}={old.metadata.get(f)!r}" for f in _RESUME_FIELDS)
                + f"; this build is for {space!r} with "
                + ", ".join(f"{f}={meta[f]!r}" for f in _RESUME_FIELDS))
        elapsed = float(old.metadata.get("build_seconds", 0.0))
        old_restrict = old.metadata.get("restricted_to_archs")
        if old_restrict and restricted_to:
            meta["restricted_to_archs"] = list(dict.fromkeys([*old_restrict, *restricted_to]))
        elif not restricted_to:
            meta["restricted_to_archs"] = old_restrict if old_restrict and \
                len(old.entries) < len(keys) else None
        table = LatencyTable(space=space, metadata=meta, entries=dict(old.entries),
                             calibration=old.calibration)
    todo = [k for k in dict.fromkeys(keys) if k.id not in table.entries]
    start = time.monotonic()
    with tqdm(total=len(todo), desc=f"lut build {space}", unit="key", disable=not progress,
              dynamic_ncols=True) as bar:
        for i in range(0, len(todo), settings.chunk):
            chunk = todo[i:i + settings.chunk]
            table = table.with_entries(time_layers(chunk, settings))
            table = table.with_metadata(
                build_seconds=round(elapsed + time.monotonic() - start, 1),
                num_keys=len(table.entries))
            table.save(out)
            bar.update(len(chunk))
            if on_chunk is not None:
                on_chunk(table)
    table = table.with_metadata(build_seconds=round(elapsed + time.monotonic() - start, 1),
                                num_keys=len(table.entries))
    if not restricted_to:  # the whole space is now in the table
        table = table.with_metadata(restricted_to_archs=None)
    table.save(out)
    return table
