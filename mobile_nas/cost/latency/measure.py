"""End-to-end onnxruntime timing of ONNX files and of architectures."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobile_nas.cost.latency.errors import MeasureError
from mobile_nas.cost.latency.export import export_arch_onnx
from mobile_nas.cost.latency.runner import (
    CLOCKS,
    RunnerError,
    Session,
    TimingResult,
    cpu_model,
    make_session,
    summarize,
    time_interleaved,
    timing_result,
)
from mobile_nas.cost.latency.sentinel import sentinel_onnx
from mobile_nas.progress import progress_bar
from mobile_nas.space.architecture import Architecture
from mobile_nas.torch_onnx import DEFAULT_OPSET


@dataclass(frozen=True)
class Timing:
    """Latency distribution of one model over ``runs`` timed inferences (milliseconds): the
    record ``bench`` prints and ``cost --measure`` reads, in its historical field names
    (``p50_ms`` is :attr:`TimingResult.median_ms`, ``runs`` is ``n``), plus the warm-up and
    provider. The numbers come from :func:`~mobile_nas.cost.latency.runner.timing_result`.
    """

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    runs: int
    warmup: int
    threads: int
    provider: str

    @property
    def median_ms(self) -> float:
        """``p50_ms`` under the name :class:`~.statistic.LatencyStatistic` reads."""
        return self.p50_ms

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_result(cls, r: TimingResult, *, warmup: int, provider: str) -> Timing:
        return cls(p50_ms=r.median_ms, p90_ms=r.p90_ms, p99_ms=r.p99_ms, mean_ms=r.mean_ms,
                   std_ms=r.std_ms, min_ms=r.min_ms, runs=r.n, warmup=warmup,
                   threads=r.threads, provider=provider)

    @classmethod
    def from_times(cls, times_ms: Sequence[float], *, warmup: int, threads: int,
                   provider: str, clock: str = "wall") -> Timing:
        return cls.from_result(timing_result(times_ms, clock=clock, threads=threads),
                               warmup=warmup, provider=provider)


def load_session(model: bytes | str | os.PathLike[str], *, threads: int = 1,
                 provider: str = "CPUExecutionProvider", opt_level: str = "all") -> Session:
    """An onnxruntime session, or :class:`MeasureError` naming the file if it is no model."""
    if isinstance(model, (str, os.PathLike)) and not Path(model).is_file():
        raise MeasureError(f"ONNX file not found: {model}")
    if threads < 1:
        raise MeasureError(f"threads must be >= 1, got {threads}")
    try:
        return make_session(model, threads=threads, provider=provider, opt_level=opt_level)
    except RunnerError as exc:
        raise MeasureError(str(exc)) from None
    except Exception as exc:  # onnxruntime raises its own exception types
        name = model if isinstance(model, (str, os.PathLike)) else "model bytes"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MeasureError(f"{name} is not a loadable ONNX model: {first}") from None


def measure_onnx_ms(model: bytes | str | os.PathLike[str], *, threads: int = 1,
                    provider: str = "CPUExecutionProvider", warmup: int = 10, runs: int = 100,
                    opt_level: str = "all", clock: str = "wall") -> Timing:
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
    return Timing.from_times(times["model"], warmup=warmup, threads=threads, provider=provider,
                             clock=clock)


def measure_arch_ms(arch: Architecture, *, threads: int = 1,
                    provider: str = "CPUExecutionProvider", warmup: int = 10, runs: int = 100,
                    opset: int = DEFAULT_OPSET, opt_level: str = "all",
                    clock: str = "wall", precision: str = "fp32") -> Timing:
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
                     progress: bool = False, anchor: bytes | None = None) -> list[dict[str, Any]]:
    """End-to-end medians of many architectures, repeats interleaved across them; each
    exported at ``precision`` (:func:`~.export.export_arch_onnx`).

    Returns one ``{"median_ms", "iqr_ms", "n", "min_ms"}`` per architecture, in order; with
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
    rows = [summarize(times[str(i)]) for i in range(len(archs))]
    return rows + ([summarize(times["anchor"])] if anchor is not None else [])


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

    @property
    def measured_ms(self) -> tuple[float, ...]:
        return tuple(f * self.anchor_ms for f in self.fractions)


def measure_archs_anchored(archs: Sequence[Architecture], anchor: bytes, *, repeats: int = 3,
                           threads: int = 1, provider: str = "CPUExecutionProvider",
                           warmup: int = 5, rounds: int = 20, runs_per_round: int = 5,
                           opset: int = DEFAULT_OPSET, opt_level: str = "all",
                           precision: str = "fp32", progress: bool = False) -> AnchoredRun:
    """Times ``archs`` (wall-clock medians) interleaved with ``anchor`` in ``repeats``
    separate runs (seeds 0, 1, ...): a disturbance of one run moves one of the repeats, not
    the median fraction. Exports and sessions are made once."""
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
                  rounds: int, runs_per_round: int, progress: bool) -> AnchoredRun:

    if repeats < 1:
        raise MeasureError(f"repeats must be >= 1, got {repeats}")
    fractions, anchors = [], []
    for rep in progress_bar(range(repeats), desc="time e2e", unit="run",
                            disable=not progress, leave=False):
        times = time_interleaved(sessions, warmup=warmup, rounds=rounds,
                                 runs_per_round=runs_per_round, seed=rep, clock_name="wall")
        a = summarize(times["anchor"])["median_ms"]
        anchors.append(a)
        fractions.append([summarize(times[str(i)])["median_ms"] / a for i in range(n)])
    f = np.asarray(fractions)
    med = np.median(f, axis=0)
    retest = float(np.mean(np.abs(f / med - 1)) * 100) if repeats > 1 else float("nan")
    return AnchoredRun(fractions=tuple(float(x) for x in med),
                       anchor_ms=float(np.median(anchors)), retest_pct=retest, repeats=repeats,
                       per_repeat=tuple(tuple(float(x) for x in row) for row in fractions),
                       anchor_per_repeat_ms=tuple(float(a) for a in anchors))


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
    return float(summarize(times["anchor"])["median_ms"])


def _check_clock(clock: str, threads: int) -> None:
    if clock not in CLOCKS:
        raise MeasureError(f"unknown clock {clock!r}; choose from {', '.join(CLOCKS)}")
    if clock == "cpu" and threads != 1:
        raise MeasureError(f"clock 'cpu' measures one thread; it needs threads=1, not {threads}")


def machine_info() -> dict[str, Any]:
    """CPU model, core count, OS and onnxruntime version of this machine."""
    import onnxruntime as ort

    return {"cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "os": f"{platform.system()} {platform.release()}", "onnxruntime": ort.__version__}
