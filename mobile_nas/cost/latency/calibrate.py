"""Calibration: fit the end-to-end correction of a table on a handful of measured networks.

Sums of isolated layers miss what a whole network does differently: one session call
instead of one per layer (the per-call overhead is in every table entry), fixed costs, and
cache effects. :class:`~.table.Calibration` models them as
``overhead_ms + scale * sum_ms + per_layer_ms * n_layers``, fitted by least squares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.predictor import LatencyPredictor
from mobile_nas.cost.latency.table import Calibration, LatencyTable
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.reference import REFERENCE_ARCHS

#: The most negative overhead a fit may have, as a fraction of the fastest measured network.
MAX_NEGATIVE_OVERHEAD = 0.25


def fit_calibration(sums_ms: Sequence[float], n_layers: Sequence[int],
                    measured_ms: Sequence[float], archs: Sequence[str] = ()) -> Calibration:
    """Fit of the three coefficients minimising squared *relative* error (so small and large
    networks count alike); two coefficients with 2-3 points, one with a single point.

    A fit is kept only with a positive scale and an overhead above ``-MAX_NEGATIVE_OVERHEAD``
    times the fastest measured network: a larger negative overhead (layer sums can exceed
    whole networks, e.g. from few noisy points) predicts negative latencies for networks a
    little smaller than those measured. Otherwise the scale alone is fitted (and with one
    point that measures slower than its sum, the overhead alone)."""
    s = np.asarray(sums_ms, float)
    n = np.asarray(n_layers, float)
    y = np.asarray(measured_ms, float)
    if s.size == 0:
        raise LatencyTableError("calibration needs at least one measured architecture")
    coef = None
    floor = -MAX_NEGATIVE_OVERHEAD * float(y.min())
    if s.size >= 4 and np.ptp(n) > 0 and np.ptp(s) > 0:
        c, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(s), s, n]) / y[:, None],
                                np.ones_like(y), rcond=None)
        if c[1] > 0 and c[0] >= floor:
            coef = (float(c[0]), float(c[1]), float(c[2]))
    if coef is None and s.size >= 2 and np.ptp(s) > 0:
        c, *_ = np.linalg.lstsq(np.column_stack([np.ones_like(s), s]) / y[:, None],
                                np.ones_like(y), rcond=None)
        if c[1] > 0 and c[0] >= floor:
            coef = (float(c[0]), float(c[1]), 0.0)
    if coef is None and s.size == 1 and y[0] >= s[0]:
        coef = (float(y[0] - s[0]), 1.0, 0.0)
    if coef is None and np.all(s > 0):
        r = s / y  # scale alone: minimises sum((k * s / y - 1)^2)
        coef = (0.0, float(np.sum(r) / np.sum(r * r)), 0.0)
    if coef is None:
        coef = (float(max(np.median(y - s), 0.0)), 1.0, 0.0)
    pred = coef[0] + coef[1] * s + coef[2] * n
    mape = float(np.mean(np.abs(pred - y) / y) * 100)
    return Calibration(overhead_ms=coef[0], scale=coef[1], per_layer_ms=coef[2],
                       archs=tuple(archs), measured_ms=tuple(float(v) for v in y),
                       fit_mape=round(mape, 3))


def calibration_archs(table: LatencyTable, space, *, n: int = 8, seed: int = 0,
                      include: Sequence[Architecture] = ()) -> list[Architecture]:
    """Up to ``n`` architectures the table fully covers: ``include``, then the space's
    reference architectures, then random samples."""
    chosen: dict[str, Architecture] = {}

    def add(a: Architecture) -> None:
        if len(chosen) < n and not table.missing(space.layers(a)):
            chosen.setdefault(a.to_string(), a)

    for a in include:
        add(a)
    for name in REFERENCE_ARCHS.names():
        ref = REFERENCE_ARCHS.get(name)
        if ref.space == space.name:
            add(Architecture.from_string(ref.arch, space.name))
    rng = np.random.default_rng(seed)
    for _ in range(50 * n):
        if len(chosen) >= n:
            break
        add(space.sample(rng))
    return list(chosen.values())


def calibrate_table(table: LatencyTable, archs: Sequence[Architecture], *,
                    threads: int | None = None, provider: str | None = None,
                    progress: bool = False) -> LatencyTable:
    """Measures ``archs`` end to end with the table's settings and stores the fitted
    calibration in a new table."""
    from mobile_nas.cost.latency.measure import measure_archs_ms

    if not archs:
        raise LatencyTableError("no architecture fully covered by the table to calibrate on")
    md = table.metadata
    uncal = LatencyPredictor(table.with_calibration(None))
    preds = [uncal.predict(a) for a in archs]
    measured = measure_archs_ms(archs, threads=threads or int(md.get("threads", 1)),
                                provider=provider or md.get("provider", "CPUExecutionProvider"),
                                opset=int(md.get("opset", 17)),
                                opt_level=md.get("opt_level", "all"),
                                clock=md.get("clock", "wall"), progress=progress)
    cal = fit_calibration([p.sum_ms for p in preds], [len(p.per_layer) for p in preds],
                          [m[f"{table.statistic}_ms"] for m in measured],
                          [a.to_string() for a in archs])
    return table.with_calibration(cal)
