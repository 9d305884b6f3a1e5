"""The network model of a calibration: how a whole network's latency follows from the table
entries of its layers.

A network is not the sum of its lone layers. Measured on onnxruntime (CPU, 1 thread) with the
layers and 50 whole networks in one interleaved run (``benchmarks/latency_diagnosis.py`` and
its page): a lone layer pays a session call and, for the NCHWc kernels, a layout reorder at
both ends, which a network pays once; and each kind of operator shifts by its own factor
(depthwise and pointwise convolutions, pooling and the classifier do not share a memory
behaviour). The plain layer sum overestimates the small fmnist28 networks by about 30%.

:func:`network_features` describes a network by its layers' entries, per operator kind
(``sum:<op>``: the sum of that op's entries, ``count:<op>``: how many) and over all layers
(``sum``, ``count``), plus a constant (``const``: per-network overhead). :func:`fit_network_model`
fits weights for them by least squares on *relative* error (small and large networks count
alike) with a ridge penalty on the per-op terms only: an op seen in few calibration networks
keeps the shared ``sum``/``count`` weights, an op never seen is predicted by them alone. The
penalty is chosen by leave-one-out error on the fitted networks (no held-out network is
seen). The diagnosis page compares it with the linear ``overhead + scale * sum + per_layer *
count`` per space.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mobile_nas.space.layers import LayerKey

CONST, SUM, COUNT = "const", "sum", "count"
#: Shared terms, never penalized.
SHARED = (CONST, SUM, COUNT)
#: Ridge penalties tried (on standardized per-op columns), chosen by leave-one-out error.
RIDGE_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: Fewest fitted networks for the ``shape`` feature set (see module).
SHAPE_MIN_NETWORKS = 120


def _add(f: dict[str, float], tag: str, value: float) -> None:
    f[f"sum:{tag}"] = f.get(f"sum:{tag}", 0.0) + value
    f[f"count:{tag}"] = f.get(f"count:{tag}", 0.0) + 1


def network_features(per_layer: Sequence[tuple[LayerKey, float]]) -> dict[str, float]:
    """``const``, ``sum``, ``count`` and per-op ``sum:<op>`` / ``count:<op>`` of a network
    whose runtime layers have these table values (ms, or fractions of the anchor)."""
    f: dict[str, float] = {CONST: 1.0, SUM: 0.0, COUNT: 0.0}
    for key, value in per_layer:
        f[SUM] += value
        f[COUNT] += 1
        _add(f, key.op, value)
    return f


def shape_features(per_layer: Sequence[tuple[LayerKey, float]]) -> dict[str, float]:
    """:func:`network_features` plus sum/count per operator x activation, operator x
    squeeze-excite, kernel, expansion, stride x residual, output channels and input height."""
    f = network_features(per_layer)
    for key, value in per_layer:
        for tag in (f"{key.op}_{key.act}", f"{key.op}_se{key.se > 0}", f"k{key.kernel}",
                    f"e{key.expansion}", f"s{key.stride}_r{int(key.residual)}",
                    f"c{key.cout}", f"h{key.h}"):
            _add(f, tag, value)
    return f


#: Feature sets by the name a calibration records (``ops``: tables before 2026-12-08).
FEATURE_SETS: dict[str, Callable[[Sequence[tuple[LayerKey, float]]], dict[str, float]]] = {
    "ops": network_features, "shape": shape_features}


def feature_set_for(n_fit: int) -> str:
    """The feature set a calibration on ``n_fit`` networks uses (see module)."""
    return "shape" if n_fit >= SHAPE_MIN_NETWORKS else "ops"


def apply_weights(weights: Mapping[str, float], features: Mapping[str, float]) -> float:
    """The model's prediction: the weighted sum of the features it has weights for."""
    return float(sum(w * features.get(name, 0.0) for name, w in weights.items()))


@dataclass(frozen=True)
class NetworkFit:
    """Fitted weights, the ridge penalty chosen and the fit's leave-one-out MAPE (%)."""

    weights: dict[str, float]
    ridge: float
    loo_mape: float


def _solve(x: np.ndarray, y: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    w = x / y[:, None]
    return np.linalg.solve(w.T @ w + np.diag(penalty), w.T @ np.ones_like(y))


def fit_network_model(features: Sequence[Mapping[str, float]], measured: Sequence[float]
                      ) -> NetworkFit:
    """Weights minimising the squared relative error of ``measured`` (same unit as the
    features' values), shared terms free, per-op terms ridge-penalized (see module)."""
    y = np.asarray(measured, float)
    names = list(SHARED) + sorted({n for f in features for n in f} - set(SHARED))
    x = np.array([[f.get(n, 0.0) for n in names] for f in features], float)
    # standardize per-op columns so one penalty fits all; shared columns get a tiny one
    scale = np.sqrt(np.mean((x / y[:, None]) ** 2, axis=0))
    scale[scale == 0] = 1.0
    xs = x / scale
    shared = np.array([n in SHARED for n in names])
    best: tuple[float, float] | None = None
    n = len(y)
    for ridge in RIDGE_GRID:
        penalty = np.where(shared, 1e-6, ridge) * n
        errors = []
        for j in range(n):
            keep = np.arange(n) != j
            c = _solve(xs[keep], y[keep], penalty)
            errors.append(abs(xs[j] @ c / y[j] - 1))
        mape = float(np.mean(errors) * 100)
        if best is None or mape < best[1] - 1e-9:
            best = (ridge, mape)
    assert best is not None
    ridge, loo = best
    coef = _solve(xs, y, np.where(shared, 1e-6, ridge) * n) / scale
    return NetworkFit(weights={name: float(c) for name, c in zip(names, coef, strict=True)
                               if c != 0.0},
                      ridge=ridge, loo_mape=round(loo, 3))
