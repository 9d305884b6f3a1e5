"""Builds latency tables: export each layer to ONNX, time all of them interleaved, and watch
a sentinel model for a disturbed machine.

Keys are processed in chunks; inside a chunk, repeats are interleaved across keys (see
:mod:`.runner`), and after each chunk the partial table is written atomically, so a killed
build resumes (``resume=True``) without losing a finished chunk.

The sentinel: a fixed small model (:data:`~.sentinel.SENTINEL_MODEL`, the same in every build) is
timed inside every chunk, interleaved with its keys, so it sees whatever the chunk sees.
The first chunk of a run is timed :data:`SENTINEL_REPEATS` times; the median of the
sentinel's values there is its baseline, and their spread defines the noise floor
(:func:`noise_floor_pct`). A later chunk whose sentinel is further from the baseline than
the floor was timed on a disturbed machine: it is re-timed (up to :data:`MAX_RETIMES`
times), the attempt whose sentinel is nearest the baseline is kept, and the event is logged
in the table's ``metadata.sentinel``.

Where the times come from is a :class:`TimingBackend`: onnxruntime sessions of exported
layers (:func:`onnxruntime_backend`) or, in tests, fake sessions on a fake clock.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobile_nas import __version__
from mobile_nas.cost.latency.errors import LatencyTableError, TableSettingError
from mobile_nas.cost.latency.export import export_layer_onnx
from mobile_nas.cost.latency.measure import load_session
from mobile_nas.cost.latency.runner import Session, this_machine, time_interleaved, timing_result
from mobile_nas.cost.latency.sentinel import SENTINEL_MODEL, sentinel_onnx
from mobile_nas.cost.latency.settings import (
    DEFAULTS,
    RESUME_FIELDS,
    ProfileSettings,
)
from mobile_nas.cost.latency.table import LatencyTable, LayerLatency
from mobile_nas.progress import progress_bar
from mobile_nas.space.layers import LayerKey

__all__ = ["MAX_RETIMES", "MIN_NOISE_FLOOR_PCT", "SENTINEL_REPEATS",
           "ProfileSettings", "TimingBackend", "build_table", "noise_floor_pct",
           "onnxruntime_backend", "table_metadata", "timing_order"]

#: The sentinel's id among a chunk's sessions (not a LayerKey id: those have no spaces).
SENTINEL_ID = "sentinel model"
#: Times the first chunk of a run is timed to learn the sentinel's baseline and spread.
SENTINEL_REPEATS = 5
#: The noise floor is never below this (a spread of 0 would flag every chunk).
MIN_NOISE_FLOOR_PCT = 2.0
#: Re-timings of a disturbed chunk before its best attempt is kept anyway.
MAX_RETIMES = 2
#: One timing of a chunk: its entries and the sentinel's value (ms).
_Attempt = tuple[dict[str, LayerLatency], float]


@dataclass(frozen=True)
class TimingBackend:
    """Sessions to time and the clock to time them with.

    ``layer_session(key, settings)`` and ``sentinel_session(settings)`` return objects with
    ``get_inputs()`` and ``run(None, feed)`` (onnxruntime sessions, or fakes); ``timer`` is a
    nanosecond counter replacing the clock named by the settings (None: the real clock)."""

    layer_session: Callable[[LayerKey, ProfileSettings], Session]
    sentinel_session: Callable[[ProfileSettings], Session]
    timer: Callable[[], int] | None = None


def _ort_layer_session(key: LayerKey, settings: ProfileSettings) -> Session:
    return load_session(export_layer_onnx(key, opset=settings.opset,
                                          precision=settings.precision),
                        threads=settings.threads, provider=settings.provider,
                        opt_level=settings.opt_level)


def _ort_sentinel_session(settings: ProfileSettings) -> Session:
    return load_session(sentinel_onnx(settings.opset), threads=settings.threads,
                        provider=settings.provider, opt_level=settings.opt_level)


def onnxruntime_backend() -> TimingBackend:
    """Layers exported by :func:`~.export.export_layer_onnx` (as bundles ship them; INT8 QDQ
    as ``export --int8`` quantizes for an int8 table) and timed in onnxruntime sessions with
    the settings' threads, provider and optimization level. The sentinel stays fp32 in every
    table: it watches the machine, and one model makes builds comparable."""
    return TimingBackend(layer_session=_ort_layer_session,
                         sentinel_session=_ort_sentinel_session)


def table_metadata(settings: ProfileSettings, **extra: Any) -> dict[str, Any]:
    return {**this_machine().to_json(), **settings.metadata(), "mobile_nas_version": __version__,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


def noise_floor_pct(repeats_ms: Sequence[float]) -> tuple[float, float]:
    """``(baseline_ms, floor_pct)`` of the sentinel's repeated values: the baseline is their
    median; the floor is twice the largest deviation from it once the single farthest
    repeat is set aside (one disturbed repeat must not widen the floor), in percent of the
    baseline, and at least :data:`MIN_NOISE_FLOOR_PCT`."""
    if not repeats_ms:
        raise LatencyTableError("the sentinel needs at least one timed repeat")
    base = float(statistics.median(repeats_ms))
    devs = sorted(abs(v - base) / base * 100 for v in repeats_ms)
    kept = devs[:-1] if len(devs) > 2 else devs
    return base, max(2 * max(kept), MIN_NOISE_FLOOR_PCT)


def _time_chunk(sessions: Mapping[str, Session], sentinel: Session, settings: ProfileSettings,
                backend: TimingBackend, seed: int) -> _Attempt:
    """One interleaved timing of a chunk with the sentinel among it: the chunk's entries and
    the sentinel's value (the table's statistic, in ms)."""
    times = time_interleaved({**sessions, SENTINEL_ID: sentinel}, warmup=settings.warmup,
                             rounds=settings.rounds, runs_per_round=settings.runs_per_round,
                             seed=seed, clock_name=settings.clock, timer=backend.timer)
    stat = settings.layer_statistic
    sentinel_ms = stat.of(timing_result(times.pop(SENTINEL_ID)))
    entries = {}
    for kid, t in times.items():
        row = timing_result(t)
        entries[kid] = LayerLatency(**row.summary(), anchor_fraction=stat.of(row) / sentinel_ms)
    return entries, sentinel_ms


class _SentinelWatch:
    """The sentinel's record of one build run (a resumed build is a new run)."""

    def __init__(self, settings: ProfileSettings, old: Mapping[str, Any] | None) -> None:
        self.settings = settings
        old = dict(old or {})
        self.runs: list[dict[str, Any]] = list(old.get("runs", []))
        self.events: list[dict[str, Any]] = list(old.get("events", []))
        self.run: dict[str, Any] | None = None
        self.baseline = self.floor = 0.0

    def deviation_pct(self, value: float) -> float:
        return (value - self.baseline) / self.baseline * 100

    def first_chunk(self, timed: Callable[[int], _Attempt]) -> dict[str, LayerLatency]:
        attempts = [timed(a) for a in range(SENTINEL_REPEATS)]
        values = [s for _, s in attempts]
        self.baseline, self.floor = noise_floor_pct(values)
        self.run = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "baseline_ms": self.baseline, "repeats_ms": values,
                    "noise_floor_pct": round(self.floor, 3), "chunks": 1, "retimed": 0}
        self.runs.append(self.run)
        return min(attempts, key=lambda a: abs(a[1] - self.baseline))[0]

    def chunk(self, index: int, keys: Sequence[LayerKey],
              timed: Callable[[int], _Attempt]) -> dict[str, LayerLatency]:
        assert self.run is not None  # first_chunk ran
        attempts = [timed(0)]
        while abs(self.deviation_pct(attempts[-1][1])) > self.floor \
                and len(attempts) <= MAX_RETIMES:
            attempts.append(timed(len(attempts)))
        self.run["chunks"] += 1
        best = min(range(len(attempts)), key=lambda i: abs(attempts[i][1] - self.baseline))
        if len(attempts) > 1:
            self.run["retimed"] += 1
            devs = [self.deviation_pct(s) for _, s in attempts]
            self.events.append({
                "run": len(self.runs) - 1, "chunk": index, "first_key": keys[0].id,
                "keys": len(keys), "baseline_ms": self.baseline,
                "noise_floor_pct": round(self.floor, 3),
                "sentinel_ms": [s for _, s in attempts],
                "deviation_pct": [round(d, 3) for d in devs], "kept": best,
                "resolved": abs(devs[best]) <= self.floor})
        return attempts[best][0]

    def to_json(self) -> dict[str, Any]:
        return {"model": SENTINEL_MODEL, "statistic": self.settings.layer_statistic.name,
                "repeats": SENTINEL_REPEATS, "max_retimes": MAX_RETIMES,
                "runs": self.runs, "events": self.events}


def timing_order(keys: Sequence[LayerKey]) -> list[LayerKey]:
    """The order in which a build times ``keys`` (and cuts it into chunks): a seeded random
    mix, so each chunk runs its layers among layers of every size (the cache context a
    network gives them) rather than among its sorted neighbours, and a disturbed chunk
    touches keys of every kind. Fifty fmnist28 entries of two builds in a row agreed within
    4.2% (mean) in this order and 7-9% in key order (2026-12-07)."""
    order = list(keys)
    np.random.default_rng(0).shuffle(order)
    return order


def build_table(space: str, keys: Sequence[LayerKey], out: str | os.PathLike[str], *,
                settings: ProfileSettings = DEFAULTS, resume: bool = False,
                restricted_to: Sequence[str] | None = None, progress: bool = True,
                on_chunk: Callable[[LatencyTable], None] | None = None,
                backend: TimingBackend | None = None,
                metadata: Mapping[str, Any] | None = None) -> LatencyTable:
    """Profiles ``keys`` into the table at ``out`` (written atomically after every chunk),
    with the sentinel watching every chunk (see module).

    With ``resume``, entries already in ``out`` are kept and not re-timed; the settings must
    match the existing table's (:data:`~.settings.RESUME_FIELDS`: an fp32 table is never
    extended with int8 entries, nor the reverse). ``restricted_to`` (arch strings) is
    recorded in the metadata when the keys are a subset of the space; ``metadata`` is added
    to it.
    """
    backend = backend or onnxruntime_backend()
    out = Path(out)
    if not out.parent.is_dir():
        raise LatencyTableError(f"output folder {out.parent} does not exist")
    meta = table_metadata(settings, source="mobile-nas lut build",
                          restricted_to_archs=list(restricted_to) if restricted_to else None,
                          **dict(metadata or {}))
    table = LatencyTable(space=space, metadata=meta)
    elapsed = 0.0
    old_sentinel = None
    if resume and out.exists():
        old = LatencyTable.load(out)
        have = {f: old.metadata.get(f, getattr(DEFAULTS, f)) for f in RESUME_FIELDS}
        clash = [f for f in RESUME_FIELDS if have[f] != meta[f]]
        if old.space != space or clash:
            diff = [("space", old.space, space)] * (old.space != space) + \
                [(f, have[f], meta[f]) for f in clash]
            raise TableSettingError(
                "out", "cannot resume {value}: it was built with {had}, this build has {has} "
                "(a table holds one protocol; resume with its settings or write another "
                "{what})", value=out, had=", ".join(f"{f}={h!r}" for f, h, _ in diff),
                has=", ".join(f"{f}={w!r}" for f, _, w in diff))
        elapsed = float(old.metadata.get("build_seconds", 0.0))
        old_sentinel = old.metadata.get("sentinel")
        if old.metadata.get("on_demand"):  # entries searches added (see .ondemand)
            meta["on_demand"] = old.metadata["on_demand"]
        old_restrict = old.metadata.get("restricted_to_archs")
        if old_restrict and restricted_to:
            meta["restricted_to_archs"] = list(dict.fromkeys([*old_restrict, *restricted_to]))
        elif not restricted_to:
            meta["restricted_to_archs"] = old_restrict if old_restrict and \
                len(old.entries) < len(keys) else None
        table = LatencyTable(space=space, metadata=meta, entries=dict(old.entries),
                             calibration=old.calibration)
    todo = timing_order([k for k in dict.fromkeys(keys) if k.id not in table.entries])
    watch = _SentinelWatch(settings, old_sentinel)
    sentinel = backend.sentinel_session(settings) if todo else None
    start = time.monotonic()
    with progress_bar(total=len(todo), desc=f"lut build {space}", unit="key",
                      disable=not progress) as bar:
        for index, i in enumerate(range(0, len(todo), settings.chunk)):
            chunk = todo[i:i + settings.chunk]
            sessions = {k.id: backend.layer_session(k, settings) for k in chunk}
            assert sentinel is not None  # todo is not empty

            def timed(seed: int, sessions: dict[str, Session] = sessions) -> _Attempt:
                return _time_chunk(sessions, sentinel, settings, backend, seed)

            entries = watch.first_chunk(timed) if index == 0 else \
                watch.chunk(index, chunk, timed)
            table = table.with_entries(entries)
            table = table.with_metadata(
                build_seconds=round(elapsed + time.monotonic() - start, 1),
                num_keys=len(table.entries), sentinel=watch.to_json())
            table.save(out)
            bar.update(len(chunk))
            if on_chunk is not None:
                on_chunk(table)
    table = table.with_metadata(build_seconds=round(elapsed + time.monotonic() - start, 1),
                                num_keys=len(table.entries))
    if old_sentinel is not None and not todo:
        table = table.with_metadata(sentinel=old_sentinel)
    if not restricted_to:  # the whole space is now in the table
        table = table.with_metadata(restricted_to_archs=None)
    table.save(out)
    return table
