"""Calibration: map a table's layer sums to the end-to-end latency users measure, and judge
the fit on networks it did not see.

Sums of isolated layers miss what a whole network does differently: one session call
instead of one per layer (the per-call overhead is in every table entry), fixed costs, and
cache effects; and a table timed with the CPU clock or the fastest run measures another
quantity than a user's wall-clock median. With enough calibration networks (the default)
:class:`~.table.Calibration` is the per-op network model of :mod:`.network_model`, fitted in
fractions of the anchor: the networks are timed interleaved with the anchor (the sentinel
that also ran in every chunk of layers), so the machine's drift between the layer chunks and
the calibration run divides out. With few networks it is the linear form
``overhead_ms + scale * sum_ms + per_layer_ms * n_layers``. Both are fitted by least squares
(relative error) on the :data:`~.statistic.WALL_MEDIAN` of networks measured end to end.

A calibration cannot fool itself: it is fitted on at least :data:`MIN_FIT_NETWORKS`
networks with residual degrees of freedom left (:func:`fit_calibration`), and judged on at
least :data:`MIN_HELD_OUT` other networks measured in the same interleaved run
(:class:`~.table.HeldOutCheck`). :func:`plan_calibration` chooses both sets;
:func:`calibrate_table` measures them and stores fit and check in the table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mobile_nas.cost.latency import measure as end_to_end
from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.network_model import (
    FEATURE_SETS,
    apply_weights,
    feature_set_for,
    fit_network_model,
)
from mobile_nas.cost.latency.predictor import LatencyPredictor
from mobile_nas.cost.latency.sentinel import sentinel_onnx
from mobile_nas.cost.latency.statistic import WALL_MEDIAN, LatencyStatistic
from mobile_nas.cost.latency.table import Calibration, HeldOutCheck, LatencyTable
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.layers import LayerKey
from mobile_nas.space.reference import REFERENCE_ARCHS

#: The most negative overhead a fit may have, as a fraction of the fastest measured network.
MAX_NEGATIVE_OVERHEAD = 0.25
#: Fewest networks a calibration is fitted on: two coefficients and a residual to spare.
MIN_FIT_NETWORKS = 3
#: Fewest networks for all three coefficients (two residual degrees of freedom).
MIN_NETWORKS_3_COEFFICIENTS = 5
#: Fewest networks a calibration is judged on.
MIN_HELD_OUT = 2
#: Fewest fitted networks for the per-op network model (:mod:`.network_model`); fewer fit
#: the linear form.
MIN_NETWORK_MODEL = 12
#: ``lut build`` / ``lut calibrate`` defaults (see :func:`default_fit_networks`).
DEFAULT_FIT_NETWORKS = 160
DEFAULT_HELD_OUT = 16


def default_fit_networks(space: SearchSpace) -> int:
    """Networks to fit a space's calibration on by default: :data:`DEFAULT_FIT_NETWORKS`
    (enough for the ``shape`` feature set, :mod:`.network_model`), or three per weight of the
    ``ops`` model (``const``, ``sum``, ``count`` and two per operator kind) where that is
    more. nasnet's 21 ``ops`` weights fitted on 32 networks checked at 4.3% on 16 held-out
    networks, on 64 at 1.3% (2026-12-07); on fmnist28 (Intel Xeon) 160 networks with the
    ``shape`` set predicted others at 5.2% MAPE, 40 or 80 at 6.3-6.7%."""
    kinds = {k.op for k in space.enumerate_layers()}
    return max(DEFAULT_FIT_NETWORKS, 3 * (3 + 2 * len(kinds)))


@dataclass(frozen=True)
class AnchoredMeasurement:
    """End-to-end times (ms) of networks and of the anchor timed interleaved with them;
    ``retest_pct``: how far the repeated runs' fractions were from their median (mean %)."""

    measured_ms: tuple[float, ...]
    anchor_ms: float
    retest_pct: float | None = None


#: Measures architectures end to end: the target statistic of each, in ms, in order, or an
#: :class:`AnchoredMeasurement` that also has the anchor's.
EndToEndMeasure = Callable[[Sequence[Architecture]],
                           "Sequence[float] | AnchoredMeasurement"]


def fit_calibration(sums_ms: Sequence[float], n_layers: Sequence[int],
                    measured_ms: Sequence[float], archs: Sequence[str] = (), *,
                    target: LatencyStatistic = WALL_MEDIAN) -> Calibration:
    """Least-squares fit minimising squared *relative* error (small and large networks count
    alike): three coefficients with at least :data:`MIN_NETWORKS_3_COEFFICIENTS` networks,
    else overhead and scale; never fewer than :data:`MIN_FIT_NETWORKS` networks, so a
    residual is always left to see the noise by.

    A fit is kept only with a positive scale and an overhead above ``-MAX_NEGATIVE_OVERHEAD``
    times the fastest measured network: a larger negative overhead (layer sums can exceed
    whole networks) predicts negative latencies for networks a little smaller than those
    measured. Otherwise the scale alone is fitted (or, failing that, the overhead alone)."""
    s = np.asarray(sums_ms, float)
    n = np.asarray(n_layers, float)
    y = np.asarray(measured_ms, float)
    if not s.size == n.size == y.size:
        raise LatencyTableError("calibration needs one sum, layer count and measurement per "
                                "network")
    if s.size < MIN_FIT_NETWORKS:
        raise LatencyTableError(f"calibration needs at least {MIN_FIT_NETWORKS} measured "
                                f"networks (two coefficients and a residual), got {s.size}")
    if not np.all(np.isfinite(y) & (y > 0)):
        raise LatencyTableError("end-to-end measurements must be positive finite numbers")
    coef, k = None, 0
    floor = -MAX_NEGATIVE_OVERHEAD * float(y.min())
    if s.size >= MIN_NETWORKS_3_COEFFICIENTS and np.ptp(n) > 0 and np.ptp(s) > 0:
        c, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(s), s, n]) / y[:, None],
                                np.ones_like(y), rcond=None)
        if c[1] > 0 and c[0] >= floor:
            coef, k = (float(c[0]), float(c[1]), float(c[2])), 3
    if coef is None and np.ptp(s) > 0:
        c, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(s), s]) / y[:, None],
                                np.ones_like(y), rcond=None)
        if c[1] > 0 and c[0] >= floor:
            coef, k = (float(c[0]), float(c[1]), 0.0), 2
    if coef is None and np.all(s > 0):
        r = s / y  # scale alone: minimises sum((k * s / y - 1)^2)
        coef, k = (0.0, float(np.sum(r) / np.sum(r * r)), 0.0), 1
    if coef is None:
        coef, k = (float(max(np.median(y - s), 0.0)), 1.0, 0.0), 1
    pred = coef[0] + coef[1] * s + coef[2] * n
    mape = float(np.mean(np.abs(pred - y) / y) * 100)
    return Calibration(overhead_ms=coef[0], scale=coef[1], per_layer_ms=coef[2],
                       archs=tuple(archs), measured_ms=tuple(float(v) for v in y),
                       fit_mape=round(mape, 3), coefficients=k, target=target)


def held_out_check(calibration: Calibration, sums_ms: Sequence[float],
                   n_layers: Sequence[int], measured_ms: Sequence[float],
                   archs: Sequence[str]) -> HeldOutCheck:
    """``calibration``'s predictions of networks it was not fitted on, against their
    measurements (ms)."""
    fitted = set(calibration.archs)
    seen = [a for a in archs if a in fitted]
    if seen:
        raise LatencyTableError(f"held-out network {seen[0]!r} was used in the fit")
    return HeldOutCheck(archs=tuple(archs), measured_ms=tuple(float(m) for m in measured_ms),
                        predicted_ms=tuple(float(calibration.apply(s, n))
                                           for s, n in zip(sums_ms, n_layers, strict=True)))


@dataclass(frozen=True)
class CalibrationPlan:
    """The networks a calibration is fitted on and those it is judged on (disjoint), and
    the seed that drew the random ones (``sampled``, a subset of both)."""

    fit: tuple[Architecture, ...]
    held_out: tuple[Architecture, ...]
    seed: int
    sampled: tuple[Architecture, ...] = ()

    @property
    def archs(self) -> tuple[Architecture, ...]:
        return self.fit + self.held_out


def plan_calibration(space: SearchSpace, *, covers: LatencyTable | None = None,
                     include: Sequence[Architecture] = (), n_fit: int = DEFAULT_FIT_NETWORKS,
                     n_held_out: int = DEFAULT_HELD_OUT, seed: int = 0,
                     references: bool = True, near_references: float = 0.0
                     ) -> CalibrationPlan:
    """Chooses ``n_fit`` + ``n_held_out`` distinct networks: ``include`` first, then (with
    ``references``) the space's reference architectures and, for ``near_references`` of
    ``n_fit`` shared among them, their neighbours (:data:`NEIGHBOUR_EDITS`), then random
    samples of the space drawn with ``seed``; the first ``n_fit`` are fitted on, the others
    held out.

    Neighbours put fitted networks where a target set by a reference decides (a
    hand-designed network is a rare draw: on 2026-12-07 every Intel-built fmnist28 table
    under-predicted fmnist28_mnasnet 7-21% more than random networks). Not the default: a
    quarter of neighbours with :attr:`~.table.Calibration.measured_lookup` and longer
    calibration timing did not lower the ratio error in every run of a pre-registered check
    (``benchmarks/results/latency_prediction_intel_v2.md``).

    ``covers``: only networks whose layers this table has (None: any network, to decide
    which layers a restricted build adds). Raises :class:`LatencyTableError` when fewer
    networks qualify or the counts are below :data:`MIN_FIT_NETWORKS` /
    :data:`MIN_HELD_OUT`."""
    if n_fit < MIN_FIT_NETWORKS or n_held_out < MIN_HELD_OUT:
        raise LatencyTableError(f"a calibration needs at least {MIN_FIT_NETWORKS} networks to "
                                f"fit and {MIN_HELD_OUT} held out, got {n_fit} and "
                                f"{n_held_out}")
    want = n_fit + n_held_out
    chosen: dict[str, Architecture] = {}
    sampled: list[Architecture] = []

    def add(a: Architecture) -> bool:
        text = a.to_string()
        if len(chosen) >= want or text in chosen:
            return False
        if covers is not None and covers.missing(space.runtime_layers(a)):
            return False
        chosen[text] = a
        return True

    for a in include:
        add(a)
    rng = np.random.default_rng(seed)
    if references:
        refs = [Architecture.from_string(REFERENCE_ARCHS.get(name).arch, space.name)
                for name in REFERENCE_ARCHS.names()
                if REFERENCE_ARCHS.get(name).space == space.name]
        for ref in refs:
            add(ref)
        for ref in refs:
            quota = int(n_fit * near_references) // len(refs)
            for _ in range(50 * quota):
                if quota == 0:
                    break
                a = _neighbour(space, ref, rng)
                if add(a):
                    sampled.append(a)
                    quota -= 1
    for _ in range(200 * want):
        if len(chosen) >= want:
            break
        a = space.sample(rng)
        if add(a):
            sampled.append(a)
    if len(chosen) < want:
        raise LatencyTableError(
            f"only {len(chosen)} networks of space {space.name!r} are covered by the table; "
            f"a calibration needs {n_fit} to fit and {n_held_out} held out")
    archs = list(chosen.values())
    return CalibrationPlan(fit=tuple(archs[:n_fit]), held_out=tuple(archs[n_fit:]),
                           seed=seed, sampled=tuple(sampled))


#: How many decisions a reference's neighbour changes (drawn uniformly).
NEIGHBOUR_EDITS = (1, 2, 3)


def _neighbour(space: SearchSpace, arch: Architecture, rng: np.random.Generator
               ) -> Architecture:
    """``arch`` with 1-3 of its decisions set to another of their choices."""
    indices = list(arch.indices())
    sizes = [len(d) for d in space.decisions]
    free = [i for i, n in enumerate(sizes) if n > 1]
    edits = min(int(rng.choice(NEIGHBOUR_EDITS)), len(free))
    for pos in rng.choice(free, size=edits, replace=False):
        others = [c for c in range(sizes[pos]) if c != indices[pos]]
        indices[pos] = int(rng.choice(others))
    return space.from_indices(indices)


def recalibration_plan(table: LatencyTable, space: SearchSpace, *,
                       include: Sequence[Architecture] = (), n_fit: int = DEFAULT_FIT_NETWORKS,
                       n_held_out: int = DEFAULT_HELD_OUT, seed: int = 0) -> CalibrationPlan:
    """:func:`plan_calibration` for an existing table: ``include``, then the networks its
    calibration was fitted and checked on (in those roles when the counts allow), then
    those it is restricted to, then references and random networks it covers."""
    cal = table.calibration
    known = [*(cal.archs if cal else ()), *(cal.held_out.archs if cal and cal.held_out else ()),
             *(table.metadata.get("restricted_to_archs") or ())]
    candidates = list(include) + [Architecture.from_string(a, space.name) for a in known]
    return plan_calibration(space, covers=table, include=candidates, n_fit=n_fit,
                            n_held_out=n_held_out, seed=seed,
                            references=not table.metadata.get("restricted_to_archs"))


def onnxruntime_measure(table: LatencyTable, *, progress: bool = False,
                        repeats: int = 3) -> EndToEndMeasure:
    """Measures networks as users do: exported whole at the table's precision (an int8 table:
    the INT8 QDQ export, quantized as ``export --int8`` quantizes), timed with onnxruntime
    with the table's threads, provider, opset and graph optimizations, interleaved with the
    anchor (the tables' sentinel, fp32) in ``repeats`` separate runs; the wall-clock median
    of each (:data:`~.statistic.WALL_MEDIAN`), whatever clock the layers used, as the median
    fraction of the anchor over the runs (one disturbed run of three moves no fraction:
    on 2026-12-07 a single disturbed calibration run made a fmnist28 table predict ratios
    with 15% error where its entries, refitted on a quiet run, gave 2%)."""
    md = table.metadata

    def measure(archs: Sequence[Architecture]) -> AnchoredMeasurement:
        opset = int(md.get("opset", 17))
        run = end_to_end.measure_archs_anchored(archs, sentinel_onnx(opset), repeats=repeats,
                                                threads=int(md.get("threads", 1)),
                                                provider=md.get("provider", "CPUExecutionProvider"),
                                                opset=opset, opt_level=md.get("opt_level", "all"),
                                                precision=table.precision, progress=progress)
        return AnchoredMeasurement(measured_ms=run.measured_ms, anchor_ms=run.anchor_ms,
                                   retest_pct=run.retest_pct)

    return measure


def layer_values(table: LatencyTable, arch: Architecture, *, relative: bool
                 ) -> list[tuple[LayerKey, float]]:
    """``arch``'s runtime layers with their table values: anchor fractions when
    ``relative``, else the table statistic in ms (missing entries raise, as predictions do)."""
    per_layer = LatencyPredictor(table.with_calibration(None)).layer_ms(arch)
    if not relative:
        return per_layer
    return [(k, table.anchor_fraction(k.id)) for k, _ in per_layer]


def calibrate_table(table: LatencyTable, plan: CalibrationPlan, *,
                    measure: EndToEndMeasure | None = None,
                    progress: bool = False, measured_lookup: bool = False) -> LatencyTable:
    """Measures the plan's networks end to end, interleaved (``measure``, default
    :func:`onnxruntime_measure`), fits the calibration on ``plan.fit`` and checks it on
    ``plan.held_out``; returns a new table holding both.

    With :data:`MIN_NETWORK_MODEL` fitted networks or more, and at least the model's weights
    plus :data:`MIN_HELD_OUT` (residuals left to see the noise by), the per-op network model
    is fitted (:mod:`.network_model`), in fractions of the anchor when the measurement timed
    the anchor (in 3 separate runs) and the entries have anchor fractions; with fewer, the
    linear form. ``measured_lookup``: a relative network model predicts its fitted networks
    by their measurement (:class:`~.predictor.LatencyPredictor`; not the default, see
    :func:`plan_calibration`)."""
    fit, held = list(plan.fit), list(plan.held_out)
    if len(fit) < MIN_FIT_NETWORKS or len(held) < MIN_HELD_OUT:
        raise LatencyTableError(f"a calibration needs at least {MIN_FIT_NETWORKS} networks to "
                                f"fit and {MIN_HELD_OUT} held out, got {len(fit)} and "
                                f"{len(held)}")
    measure = measure or onnxruntime_measure(table, progress=progress)
    result = measure(fit + held)
    anchor_ms = result.anchor_ms if isinstance(result, AnchoredMeasurement) else None
    retest = result.retest_pct if isinstance(result, AnchoredMeasurement) else None
    measured = [float(m) for m in (result.measured_ms if isinstance(result, AnchoredMeasurement)
                                   else result)]
    if len(measured) != len(fit) + len(held):
        raise LatencyTableError(f"expected {len(fit) + len(held)} end-to-end measurements, "
                                f"got {len(measured)}")
    k = len(fit)
    fit_names, held_names = [a.to_string() for a in fit], [a.to_string() for a in held]
    if not all(np.isfinite(m) and m > 0 for m in measured):
        raise LatencyTableError("end-to-end measurements must be positive finite numbers")
    seen = set(fit_names) & set(held_names)
    if seen:
        raise LatencyTableError(f"held-out network {sorted(seen)[0]!r} was used in the fit")
    relative = anchor_ms is not None and table.anchor_timebase_ms is not None
    features = feature_set_for(k)
    feats = [FEATURE_SETS[features](layer_values(table, a, relative=relative))
             for a in fit + held]
    # the ops set needs residuals left to see by; the shape set leans on its ridge penalty
    n_weights = len({name for f in feats[:k] for name in f})
    if features == "shape" or k >= max(MIN_NETWORK_MODEL, n_weights + MIN_HELD_OUT):
        unit = anchor_ms if relative and anchor_ms is not None else 1.0
        model = fit_network_model(feats[:k], [m / unit for m in measured[:k]])
        in_sample = [apply_weights(model.weights, f) * unit for f in feats[:k]]
        cal = Calibration(
            overhead_ms=0.0, scale=1.0, per_layer_ms=0.0, archs=tuple(fit_names),
            measured_ms=tuple(measured[:k]), coefficients=len(model.weights),
            fit_mape=round(float(np.mean([abs(p / m - 1) for p, m in
                                          zip(in_sample, measured[:k], strict=True)]) * 100), 3),
            target=WALL_MEDIAN, weights=model.weights, ridge=model.ridge,
            loo_mape=model.loo_mape, anchor_ms=anchor_ms if relative else None,
            retest_pct=None if retest is None or retest != retest else round(retest, 3),
            features=features, measured_lookup=measured_lookup and relative)
        check = HeldOutCheck(archs=tuple(held_names), measured_ms=tuple(measured[k:]),
                             predicted_ms=tuple(apply_weights(model.weights, f) * unit
                                                for f in feats[k:]))
    else:
        uncal = LatencyPredictor(table.with_calibration(None))
        preds = [uncal.predict(a) for a in fit + held]
        sums = [p.sum_ms for p in preds]
        counts = [len(p.per_layer) for p in preds]
        cal = fit_calibration(sums[:k], counts[:k], measured[:k], fit_names,
                              target=WALL_MEDIAN)
        check = held_out_check(cal, sums[k:], counts[k:], measured[k:], held_names)
    return table.with_calibration(dataclasses.replace(cal, held_out=check, seed=plan.seed))
