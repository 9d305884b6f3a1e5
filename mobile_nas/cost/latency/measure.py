"""End-to-end onnxruntime timing of ONNX files and of architectures, and the library's one
session opener (:func:`load_session`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mobile_nas.cost.latency.errors import MeasureError
from mobile_nas.cost.latency.export import export_arch_onnx
from mobile_nas.cost.latency.runner import (
    CLOCKS,
    RunnerError,
    Session,
    TimingResult,
    make_session,
    time_interleaved,
    timing_result,
)
from mobile_nas.cost.latency.sentinel import sentinel_onnx
from mobile_nas.progress import progress_bar
from mobile_nas.space.architecture import Architecture
from mobile_nas.torch_onnx import DEFAULT_OPSET


def load_session(model: bytes | str | os.PathLike[str], *, threads: int = 1,
                 provider: str = "CPUExecutionProvider", opt_level: str = "all",
                 config: Mapping[str, str] | None = None,
                 optimized_model_path: str | os.PathLike[str] | None = None) -> Session:
    """The library's session opener: an onnxruntime session of ONNX bytes or an ONNX/ORT
    file (:func:`~.runner.make_session`, whose settings and options it takes), or
    :class:`MeasureError` naming the file if it is no model."""
    if isinstance(model, (str, os.PathLike)) and not Path(model).is_file():
        raise MeasureError(f"ONNX file not found: {model}")
    if threads < 1:
        raise MeasureError(f"threads must be >= 1, got {threads}")
    try:
        return make_session(model, threads=threads, provider=provider, opt_level=opt_level,
                            config=config, optimized_model_path=optimized_model_path)
    except RunnerError as exc:
        raise MeasureError(str(exc)) from None
    except Exception as exc:  # onnxruntime raises its own exception types
        name = model if isinstance(model, (str, os.PathLike)) else "model bytes"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeasureError(f"{name} is not a loadable ONNX model: {first}") from None


def measure_onnx_ms(model: bytes | str | os.PathLike[str], *, threads: int = 1,
                    provider: str = "CPUExecutionProvider", warmup: int = 10, runs: int = 100,
                    opt_level: str = "all", clock: str = "wall") -> TimingResult:
    """Times ``runs`` batch-1 inferences of an ONNX model after ``warmup`` untimed ones.

    Inputs are random floats of the model's input shapes (dynamic dimensions = 1).
    ``clock`` is ``wall`` (elapsed) or ``cpu`` (the timing thread's CPU time; threads=1).
    """
    _check_clock(clock, threads)
    if runs < 1 or warmup < 0:
        raise MeasureError(f"runs must be >= 1 and warmup >= 0, got {runs} and {warmup}")
    session = load_session(model, threads=threads, provider=provider, opt_level=opt_level)
    times = time_interleaved({"model": session}, warmup=warmup, rounds=runs, runs_per_round=1,
                             clock_name=clock)
    return timing_result(times["model"], clock=clock, threads=threads)


def measure_arch_ms(arch: Architecture, *, threads: int = 1,
                    provider: str = "CPUExecutionProvider", warmup: int = 10, runs: int = 100,
                    opset: int = DEFAULT_OPSET, opt_level: str = "all",
                    clock: str = "wall", precision: str = "fp32") -> TimingResult:
    """Exports ``arch`` (torch.onnx.export, dynamo=False, ``opset``; quantized to INT8 QDQ
    for ``precision='int8'``, as tables time it) and times it."""
    return measure_onnx_ms(export_arch_onnx(arch, opset=opset, precision=precision),
                           threads=threads, provider=provider, warmup=warmup, runs=runs,
                           opt_level=opt_level, clock=clock)


def _arch_sessions(archs: Sequence[Architecture], *, threads: int, provider: str, opset: int,
                   opt_level: str, precision: str, progress: bool,
                   anchor: bytes | None) -> dict[str, Session]:
    """Sessions ``"0"``, ``"1"``, ... of the exported ``archs`` (and ``"anchor"``)."""
    sessions, exported = {}, {}
    for i, arch in enumerate(progress_bar(archs, desc="export", unit="arch",
                                          disable=not progress, leave=False)):
        if arch not in exported:  # a repeated arch gets its own session, same bytes
            exported[arch] = export_arch_onnx(arch, opset=opset, precision=precision)
        sessions[str(i)] = load_session(exported[arch], threads=threads, provider=provider,
                                        opt_level=opt_level)
    if anchor is not None:
        sessions["anchor"] = load_session(anchor, threads=threads, provider=provider,
                                          opt_level=opt_level)
    return sessions


def measure_archs_ms(archs: Sequence[Architecture], *, threads: int = 1,
                     provider: str = "CPUExecutionProvider", warmup: int = 5, rounds: int = 10,
                     runs_per_round: int = 3, opset: int = DEFAULT_OPSET,
                     opt_level: str = "all", clock: str = "wall", precision: str = "fp32",
                     progress: bool = False, anchor: bytes | None = None
                     ) -> list[TimingResult]:
    """End-to-end medians of many architectures, repeats interleaved across them; each
    exported at ``precision`` (:func:`~.export.export_arch_onnx`).

    Returns one :class:`~.runner.TimingResult` per architecture, in order; with
    ``anchor`` (ONNX bytes, e.g. the tables' sentinel) that model is timed interleaved with
    them and its row is appended last.
    """
    _check_clock(clock, threads)
    sessions = _arch_sessions(archs, threads=threads, provider=provider, opset=opset,
                              opt_level=opt_level, precision=precision, progress=progress,
                              anchor=anchor)
    with progress_bar(total=rounds, desc="time e2e", unit="round", disable=not progress,
                      leave=False) as bar:
        times = time_interleaved(sessions, warmup=warmup, rounds=rounds,
                                 runs_per_round=runs_per_round, clock_name=clock,
                                 on_round=lambda _: bar.update())
    names = [str(i) for i in range(len(archs))] + (["anchor"] if anchor is not None else [])
    return [timing_result(times[name], clock=clock, threads=threads) for name in names]


@dataclass(frozen=True)
class AnchoredRun:
    """Networks timed with an anchor in ``repeats`` separate interleaved runs: each
    network's median (over repeats) fraction of the anchor, the anchor's median ms, and the
    test-retest of the fractions (mean absolute deviation of a repeat from the median, %)."""

    fractions: tuple[float, ...]
    anchor_ms: float
    retest_pct: float
    repeats: int
    per_repeat: tuple[tuple[float, ...], ...] = ()
    anchor_per_repeat_ms: tuple[float, ...] = ()
    rounds: int = 0

    @property
    def measured_ms(self) -> tuple[float, ...]:
        return tuple(f * self.anchor_ms for f in self.fractions)


#: ``rounds=None``: as many interleaved rounds as fit this many seconds (all repeats), within
#: :data:`AUTO_ROUNDS`. Small networks get many: on a 2-core Intel VM (2026-12-07) ratios of
#: 0.1-0.2 ms networks repeated within 4-6% with 20 rounds, about 2% with 200. Not the
#: default of the calibration (see ``calibrate.plan_calibration``).
AUTO_BUDGET_S = 60.0
AUTO_ROUNDS = (20, 200)


def auto_rounds(round_ms: float, repeats: int, *, budget_s: float = AUTO_BUDGET_S) -> int:
    """Rounds per repeat that fill ``budget_s`` when one round (every session's runs) takes
    ``round_ms``, within :data:`AUTO_ROUNDS`."""
    lo, hi = AUTO_ROUNDS
    if not round_ms > 0:
        return hi
    return max(lo, min(hi, int(budget_s * 1000 / (repeats * round_ms))))


def measure_archs_anchored(archs: Sequence[Architecture], anchor: bytes, *, repeats: int = 3,
                           threads: int = 1, provider: str = "CPUExecutionProvider",
                           warmup: int = 5, rounds: int | None = 20, runs_per_round: int = 5,
                           opset: int = DEFAULT_OPSET, opt_level: str = "all",
                           precision: str = "fp32", progress: bool = False) -> AnchoredRun:
    """Times ``archs`` (wall-clock medians) interleaved with ``anchor`` in ``repeats``
    separate runs (seeds 0, 1, ...): a disturbance of one run moves one of the repeats, not
    the median fraction. Exports and sessions are made once. ``rounds=None`` chooses them
    by :func:`auto_rounds` from the warm-up's times."""
    sessions = _arch_sessions(archs, threads=threads, provider=provider, opset=opset,
                              opt_level=opt_level, precision=precision, progress=progress,
                              anchor=anchor)
    return _anchored_run(sessions, len(archs), repeats=repeats, warmup=warmup, rounds=rounds,
                         runs_per_round=runs_per_round, progress=progress)


def measure_models_anchored(models: Sequence[bytes | str | os.PathLike[str]],
                            anchor: bytes | str | os.PathLike[str], *, repeats: int = 3,
                            threads: int = 1, provider: str = "CPUExecutionProvider",
                            warmup: int = 5, rounds: int = 20, runs_per_round: int = 5,
                            opt_level: str = "all") -> AnchoredRun:
    """:func:`measure_archs_anchored` for ONNX models (bytes or files) as they are."""
    sessions: dict[str, Session] = {
        str(i): load_session(m, threads=threads, provider=provider, opt_level=opt_level)
        for i, m in enumerate(models)}
    sessions["anchor"] = load_session(anchor, threads=threads, provider=provider,
                                      opt_level=opt_level)
    return _anchored_run(sessions, len(models), repeats=repeats, warmup=warmup, rounds=rounds,
                         runs_per_round=runs_per_round, progress=False)


def _anchored_run(sessions: dict[str, Session], n: int, *, repeats: int, warmup: int,
                  rounds: int | None, runs_per_round: int, progress: bool) -> AnchoredRun:
    if repeats < 1:
        raise MeasureError(f"repeats must be >= 1, got {repeats}")
    if rounds is None:
        probe = time_interleaved(sessions, warmup=warmup, rounds=1, runs_per_round=1,
                                 clock_name="wall")
        rounds = auto_rounds(runs_per_round * sum(float(np.median(t))
                                                  for t in probe.values()), repeats)
    fractions, anchors = [], []
    for rep in progress_bar(range(repeats), desc="time e2e", unit="run",
                            disable=not progress, leave=False):
        times = time_interleaved(sessions, warmup=warmup, rounds=rounds,
                                 runs_per_round=runs_per_round, seed=rep, clock_name="wall")
        a = timing_result(times["anchor"]).median_ms
        anchors.append(a)
        fractions.append([timing_result(times[str(i)]).median_ms / a for i in range(n)])
    f = np.asarray(fractions)
    med = np.median(f, axis=0)
    retest = float(np.mean(np.abs(f / med - 1)) * 100) if repeats > 1 else float("nan")
    return AnchoredRun(fractions=tuple(float(x) for x in med),
                       anchor_ms=float(np.median(anchors)), retest_pct=retest, repeats=repeats,
                       per_repeat=tuple(tuple(float(x) for x in row) for row in fractions),
                       anchor_per_repeat_ms=tuple(float(a) for a in anchors), rounds=rounds)


def time_anchor_ms(*, threads: int = 1, provider: str = "CPUExecutionProvider",
                   opset: int = DEFAULT_OPSET, opt_level: str = "all", rounds: int = 40,
                   runs_per_round: int = 5) -> float:
    """The anchor of the latency tables (their sentinel network) timed on this machine now:
    the wall-clock median of ``rounds * runs_per_round`` runs (about a second). A relative
    table's prediction times this is this machine's milliseconds now
    (``LatencyPredictor(table, anchor_ms=...)``)."""
    session = load_session(sentinel_onnx(opset), threads=threads, provider=provider,
                           opt_level=opt_level)
    times = time_interleaved({"anchor": session}, warmup=20, rounds=rounds,
                             runs_per_round=runs_per_round, clock_name="wall")
    return timing_result(times["anchor"]).median_ms


def _check_clock(clock: str, threads: int) -> None:
    if clock not in CLOCKS:
        raise MeasureError(f"unknown clock {clock!r}; choose from {', '.join(CLOCKS)}")
    if clock == "cpu" and threads != 1:
        raise MeasureError(f"clock 'cpu' measures one thread; it needs threads=1, not {threads}")

