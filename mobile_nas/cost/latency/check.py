"""Predicted vs measured: how far a table's predictions are from end-to-end reality."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

import numpy as np

from mobile_nas.atomic import atomic_path
from mobile_nas.cost.latency import measure
from mobile_nas.cost.latency.build import load_space_archs
from mobile_nas.cost.latency.errors import LatencyTableError, MissingEntryError
from mobile_nas.cost.latency.export import export_arch_onnx
from mobile_nas.cost.latency.ondemand import summary
from mobile_nas.cost.latency.predictor import LatencyPredictor
from mobile_nas.cost.latency.probe import (
    DEFAULT_PROBE_SEED,
    ReferenceProbe,
    probe_archs,
    probe_from_ratios,
)
from mobile_nas.cost.latency.sentinel import sentinel_onnx
from mobile_nas.cost.latency.table import LatencyTable
from mobile_nas.errors import MobileNasError, OutOfRangeError, SettingError
from mobile_nas.space import get_space
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.reference import REFERENCE_ARCHS


@dataclass(frozen=True)
class CheckRow:
    """One network: predicted and measured latency (ms) and, against the check's reference
    timed in the same run, predicted and measured ratios (``repeat_*``: the second
    measurement of a ``noise`` check)."""

    arch: str
    name: str
    predicted_ms: float
    measured_ms: float
    measured_iqr_ms: float
    repeat_ms: float | None = None
    predicted_ratio: float | None = None
    measured_ratio: float | None = None
    repeat_ratio: float | None = None

    @property
    def error_pct(self) -> float:
        return (self.predicted_ms - self.measured_ms) / self.measured_ms * 100

    @property
    def ratio_error_pct(self) -> float | None:
        if self.predicted_ratio is None or self.measured_ratio is None:
            return None
        return (self.predicted_ratio - self.measured_ratio) / self.measured_ratio * 100


@dataclass(frozen=True)
class PairOrder:
    """Among pairs of checked networks whose measured latencies differ by less than
    ``within_pct`` but by more than the run's noise floor (``floor_pct``), how many the
    prediction orders as measured: the decision a search under a budget makes."""

    pairs: int
    correct: int
    within_pct: float
    floor_pct: float

    @property
    def share(self) -> float | None:
        return self.correct / self.pairs if self.pairs else None


@dataclass(frozen=True)
class CheckReport:
    """Accuracy figures over ``rows``: ``ratio_*`` of the ratios to ``reference`` (timed in
    the same interleaved runs; the protocol's measure), the plain ones of milliseconds;
    ``noise_mape`` is how far each run's ratios were from their median (mean %).
    ``load_avg``: the 1/5/15-minute load averages when the check ended."""

    rows: tuple[CheckRow, ...]
    mape: float
    within_5: float
    within_10: float
    spearman: float
    kendall: float
    noise_mape: float | None = None
    statistic: str = "wall-clock median"
    reference: str | None = None
    ratio_mape: float | None = None
    ratio_within_5: float | None = None
    ratio_within_10: float | None = None
    ratio_noise_mape: float | None = None
    pair_order: PairOrder | None = None
    load_avg: tuple[float, float, float] | None = None
    reference_ms: float | None = None
    #: the reference placed by probe networks timed in the same runs (:mod:`.probe`); the
    #: predicted ratios are then against it (``predicted_ms`` / ``probe.reference_ms``)
    probe: ReferenceProbe | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["probe"] = None if self.probe is None else self.probe.to_json()
        d["rows"] = [{**asdict(r), "error_pct": round(r.error_pct, 3),
                      "ratio_error_pct": None if r.ratio_error_pct is None
                      else round(r.ratio_error_pct, 3)} for r in self.rows]
        if self.pair_order is not None:
            d["pair_order"]["share"] = self.pair_order.share
        return d


def pair_order(predicted: Sequence[float], measured: Sequence[float], *, floor_pct: float,
               within_pct: float = 10.0) -> PairOrder:
    """:class:`PairOrder` of predicted vs measured latencies (or ratios)."""
    pairs = correct = 0
    for i in range(len(measured)):
        for j in range(i + 1, len(measured)):
            lo, hi = sorted((measured[i], measured[j]))
            diff_pct = (hi / lo - 1) * 100
            if floor_pct < diff_pct < within_pct:
                pairs += 1
                correct += (predicted[i] < predicted[j]) == (measured[i] < measured[j])
    return PairOrder(pairs=pairs, correct=correct, within_pct=within_pct, floor_pct=floor_pct)


class ErrorSummary(TypedDict):
    """Predictions against measurements: MAPE (%), shares within ±5% and ±10%, Spearman and
    Kendall rank correlations (NaN for fewer than two or constant values)."""

    mape: float
    within_5: float
    within_10: float
    spearman: float
    kendall: float


def summarize_errors(predicted: Sequence[float], measured: Sequence[float]) -> ErrorSummary:
    """The :class:`ErrorSummary` of ``predicted`` against ``measured``."""
    from scipy import stats

    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    err = np.abs(p - m) / m * 100
    out: ErrorSummary = {"mape": float(err.mean()), "within_5": float((err <= 5).mean()),
                         "within_10": float((err <= 10).mean()), "spearman": float("nan"),
                         "kendall": float("nan")}
    if len(p) >= 2 and np.ptp(p) > 0 and np.ptp(m) > 0:
        out["spearman"] = float(stats.spearmanr(p, m).statistic)
        out["kendall"] = float(stats.kendalltau(p, m).statistic)
    return out


def check_archs(table: LatencyTable, space: SearchSpace, *, n: int = 20, seed: int = 0,
                include_references: bool = True,
                include: Sequence[Architecture] = ()) -> list[tuple[str, Architecture]]:
    """Named architectures to check: ``include`` (named arch0, arch1, ...; checked even if
    the table calibrated on them), the space's references, then ``n`` random ones the table
    covers and did not calibrate on (for a table restricted with ``--arch``, drawn from its
    recorded architectures)."""
    chosen: dict[str, tuple[str, Architecture]] = {}
    for i, a in enumerate(include):
        chosen.setdefault(a.to_string(), (f"arch{i}", a))
    if include_references:
        for name in REFERENCE_ARCHS.names():
            ref = REFERENCE_ARCHS.get(name)
            arch = Architecture.from_string(ref.arch, ref.space) \
                if ref.space == space.name else None
            if arch is not None and not table.missing(space.runtime_layers(arch)):
                chosen.setdefault(ref.arch, (name, arch))  # references the table covers
    rng = np.random.default_rng(seed)
    restricted = table.metadata.get("restricted_to_archs")
    calibrated = set(table.calibration.archs) if table.calibration else set()
    picked = 0
    if restricted:
        pool = [a for a in restricted if a not in calibrated and a not in chosen]
        for i in rng.permutation(len(pool))[:n]:
            chosen[pool[i]] = (f"random{picked}", Architecture.from_string(pool[i], space.name))
            picked += 1
    else:
        for _ in range(100 * n):
            if picked >= n:
                break
            a = space.sample(rng)
            text = a.to_string()
            if text not in chosen and text not in calibrated and not table.missing(
                    space.layers(a)):
                chosen[text] = (f"random{picked}", a)
                picked += 1
    uncovered = [a.to_string() for _, a in chosen.values() if table.missing(space.layers(a))]
    if uncovered:
        keys = table.missing(k for s in uncovered
                             for k in space.layers(Architecture.from_string(s, space.name)))
        raise MissingEntryError(keys, space=space.name, arch=uncovered[0])
    return list(chosen.values())


def default_reference(table: LatencyTable, space: SearchSpace) -> tuple[str, Architecture] | None:
    """The first of the space's reference architectures that the table covers, else None."""
    for name in REFERENCE_ARCHS.names():
        ref = REFERENCE_ARCHS.get(name)
        if ref.space == space.name:
            arch = Architecture.from_string(ref.arch, ref.space)
            if not table.missing(space.runtime_layers(arch)):
                return name, arch
    return None


def check_table(table: LatencyTable, archs: Sequence[tuple[str, Architecture]], *,
                reference: tuple[str, Architecture] | None = None, repeats: int = 3,
                rounds: int = 20, progress: bool = False,
                table_path: str | os.PathLike[str] | None = None, probes: int = 0,
                probe_seed: int = DEFAULT_PROBE_SEED) -> CheckReport:
    """Measures ``archs`` end to end with ``reference`` (default: :func:`default_reference`;
    without one, the anchor) interleaved among them, in ``repeats`` separate runs (with the
    table's threads, provider and precision: an int8 table's networks as their INT8 QDQ
    export), and compares predictions with measurements as ratios to the reference (the
    median over the runs of each run's ratio) and as milliseconds (ratio times the
    reference's median). The ratios' spread over the runs is the check's noise
    (``noise_mape``, and the floor of the pair order).

    ``probes`` > 0 (with a reference): that many probe networks (:func:`.probe.probe_archs`,
    none of ``archs``) are timed in the same runs and the predicted ratios are taken against
    the reference as they place it (:class:`CheckReport` ``probe``), as a search with
    ``--probe-reference`` does."""
    md = table.metadata
    pred = LatencyPredictor(table, table_path=table_path)
    opset = int(md.get("opset", 17))
    if reference is None:
        reference = default_reference(table, get_space(table.space))
    predicted = [pred.predict(a).total_ms for _, a in archs]
    if reference is not None:
        ref_predicted: float | None = pred.predict(reference[1]).total_ms
        anchor = export_arch_onnx(reference[1], opset=opset, precision=table.precision)
    else:  # the anchor itself is the reference
        # the predictor has anchor_ms where the calibration is relative
        ref_predicted = None if pred.anchor_ms is None else float(pred.anchor_ms)
        anchor = sentinel_onnx(opset)
    probe_nets = probe_archs(get_space(table.space), probes, seed=probe_seed,
                             exclude=[a.to_string() for _, a in archs]) \
        if probes and reference is not None else []
    run = measure.measure_archs_anchored([a for _, a in archs] + probe_nets, anchor,
                                         repeats=repeats,
                                         threads=int(md.get("threads", 1)),
                                         provider=md.get("provider", "CPUExecutionProvider"),
                                         opset=opset, opt_level=md.get("opt_level", "all"),
                                         precision=table.precision, rounds=rounds,
                                         progress=progress)
    probe = None
    if probe_nets and reference is not None and ref_predicted is not None:
        n = len(archs)
        probe = probe_from_ratios(reference[1], probe_nets, run.fractions[n:], pred.predict_ms,
                                  seed=probe_seed, noise_pct=run.retest_pct)
        ref_predicted = probe.reference_ms
    rows = tuple(CheckRow(arch=a.to_string(), name=name, predicted_ms=p,
                          measured_ms=run.measured_ms[i], measured_iqr_ms=0.0,
                          repeat_ms=run.per_repeat[-1][i] * run.anchor_per_repeat_ms[-1]
                          if repeats > 1 else None,
                          predicted_ratio=None if ref_predicted is None else p / ref_predicted,
                          measured_ratio=run.fractions[i])
                 for i, ((name, a), p) in enumerate(zip(archs, predicted, strict=True)))
    s = summarize_errors([r.predicted_ms for r in rows], [r.measured_ms for r in rows])
    extra: dict[str, Any] = {"load_avg": tuple(round(x, 2) for x in os.getloadavg()),
                             "reference_ms": run.anchor_ms,
                             "reference": reference[0] if reference else "anchor"}
    if repeats > 1:
        extra["noise_mape"] = run.retest_pct
        extra["ratio_noise_mape"] = run.retest_pct
    ref_text = reference[1].to_string() if reference else None
    scored = [r for r in rows if r.arch != ref_text]
    if ref_predicted is not None and scored:
        # every row has both ratios where the reference has a prediction
        ratios = [(r.predicted_ratio, r.measured_ratio) for r in scored
                  if r.predicted_ratio is not None and r.measured_ratio is not None]
        predicted_ratios, measured_ratios = [p for p, _ in ratios], [m for _, m in ratios]
        rs = summarize_errors(predicted_ratios, measured_ratios)
        extra.update(ratio_mape=rs["mape"], ratio_within_5=rs["within_5"],
                     ratio_within_10=rs["within_10"])
        # the floor: twice the runs' mean distance from their median ratio (the noise of a
        # difference of two noisy ratios)
        floor = 2 * run.retest_pct if repeats > 1 else 0.0
        extra["pair_order"] = pair_order(predicted_ratios, measured_ratios, floor_pct=floor)
    return CheckReport(rows=rows, **s, **extra, statistic=table.prediction_statistic.name,
                       probe=probe)


def scatter_plot(report: CheckReport, path: str | os.PathLike[str], *, title: str = "") -> None:
    """Predicted vs measured scatter with the ±10% band, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = np.array([r.measured_ms for r in report.rows])
    p = np.array([r.predicted_ms for r in report.rows])
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    lo, hi = min(m.min(), p.min()) * 0.9, max(m.max(), p.max()) * 1.1
    xs = np.array([lo, hi])
    ax.plot(xs, xs, "k-", lw=1, label="predicted = measured")
    ax.fill_between(xs, xs * 0.9, xs * 1.1, color="tab:green", alpha=0.15, label="±10%")
    ax.fill_between(xs, xs * 0.95, xs * 1.05, color="tab:green", alpha=0.25, label="±5%")
    refs = [i for i, r in enumerate(report.rows) if not r.name.startswith("random")]
    rnd = [i for i in range(len(m)) if i not in refs]
    ax.scatter(m[rnd], p[rnd], s=14, label="random architectures")
    for i in refs:
        ax.scatter(m[i], p[i], s=40, marker="*", color="tab:red")
        ax.annotate(report.rows[i].name, (m[i], p[i]), fontsize=7, xytext=(3, -8),
                    textcoords="offset points")
    ax.set_xlabel("measured end-to-end latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title or "latency table check", fontsize=9)
    ax.text(0.02, 0.98, f"MAPE {report.mape:.1f}%\n±5%: {report.within_5:.0%}  "
            f"±10%: {report.within_10:.0%}\nSpearman {report.spearman:.3f}  "
            f"Kendall {report.kendall:.3f}", transform=ax.transAxes, va="top", fontsize=8)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


@dataclass(frozen=True)
class LutCheckResult:
    """What ``lut check`` found: the ``report`` on the table at ``path`` and the scatter plot
    it wrote (``plot``; None for none)."""

    report: CheckReport
    path: str
    plot: str | None

    def to_json(self) -> dict[str, Any]:
        return {**self.report.to_json(), "table": self.path, "plot": self.plot}


def check_lut(path: str | os.PathLike[str], *, space: str | None = None, n: int = 20,
              seed: int = 1, include: Sequence[str] = (), rounds: int = 20, repeats: int = 3,
              plot: str | os.PathLike[str] | None = None, progress: bool = False,
              note: Callable[[str], None] | None = None, probes: int = 0) -> LutCheckResult:
    """``lut check`` as a library pipeline: checks the table at ``path`` (for ``space``;
    default the table's) on the networks :func:`check_archs` picks (``include``: arch
    strings, reference names or JSON files, then the references and ``n`` random ones drawn
    with ``seed``) with :func:`check_table` (``probes``: ratios against the reference as
    that many probe networks place it, as a search does), and draws the :func:`scatter_plot`
    to ``plot``.

    ``note`` receives a line on the table's on-demand entries, if any, before the
    measurement starts. Raises :class:`~mobile_nas.errors.MobileNasError` for a table of
    another space, a negative ``n`` or fewer than 2 networks to check."""
    table = LatencyTable.load(path)
    resolved = get_space(space or table.space)
    if resolved.name != table.space:
        raise LatencyTableError(f"table {path} is for space {table.space!r}, "
                                f"not {resolved.name!r}")
    if n < 0:
        raise OutOfRangeError("n", n, ">= 0")
    if probes < 0:
        raise OutOfRangeError("probes", probes, ">= 0")
    archs = check_archs(table, resolved, n=n, seed=seed,
                        include=load_space_archs(include, resolved.name))
    if len(archs) < 2:
        message = "table {table} covers fewer than 2 architectures to check"
        if include:
            raise MobileNasError(message.format(table=path))
        raise SettingError("include", message + "; name the ones to check with {what} (also "
                           "those it calibrated on)", value=include, table=path)
    on_demand = summary(table)
    if on_demand and note is not None:
        note(f"on demand: {on_demand}")
    report = check_table(table, archs, rounds=rounds, repeats=repeats, progress=progress,
                         table_path=path, probes=probes)
    if plot:
        scatter_plot(report, plot, title=f"{table.space}: {len(archs)} networks, "
                     f"{table.metadata.get('threads')} thread(s), clock "
                     f"{table.metadata.get('clock', 'wall')}")
    return LutCheckResult(report=report, path=os.fspath(path),
                          plot=os.fspath(plot) if plot else None)
