"""Costs of an architecture: latency (table, predictor or measurement), MACs and parameters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mobile_nas.space.architecture import Architecture

LatencyFn = Callable[[Architecture], float]


@dataclass(frozen=True)
class Costs:
    """Latency in milliseconds, MACs (fused multiply-add = 1) and parameters of one arch."""

    latency_ms: float
    macs: int
    params: int

    def metrics(self) -> dict[str, float]:
        return {"latency_ms": self.latency_ms, "macs": float(self.macs),
                "params": float(self.params)}


class CostModel:
    """Computes :class:`Costs`; latency comes from ``latency_fn`` (ms), cached per arch.

    ``latency_fn`` is usually :func:`table_latency_fn` (a latency table's predictor) or
    :func:`measured_latency_fn` (ONNX export timed in onnxruntime).
    """

    def __init__(self, *, latency_fn: LatencyFn, source: str = "custom") -> None:
        self.latency_fn = latency_fn
        self.source = source
        self._cache: dict[Architecture, Costs] = {}

    def __call__(self, arch: Architecture) -> Costs:
        if arch not in self._cache:
            from mobile_nas.cost.model_costs import model_costs

            mc = model_costs(arch)
            self._cache[arch] = Costs(float(self.latency_fn(arch)), int(mc.macs),
                                      int(mc.params))
        return self._cache[arch]

    def describe(self) -> dict[str, Any]:
        return {"latency": self.source}


def table_latency_fn(space, table_path: str | None = None) -> tuple[LatencyFn, str]:
    """The predictor of a latency table (default: the shipped table of ``space``).

    Checks up front that the table covers every layer of the space, so a bad table fails
    before any study is touched. Returns the function and a description of its source.
    """
    from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, shipped_table_path
    from mobile_nas.errors import MobileNasError

    path = table_path or shipped_table_path(space)
    table = LatencyTable.load(path)
    have = set(getattr(table, "entries", {}) or {})
    if have:
        missing = [k.id for k in space.enumerate_layers() if k.id not in have]
        if missing:
            raise MobileNasError(
                f"latency table {str(path)!r} lacks {len(missing)} layers of space "
                f"{space.name!r} (first: {missing[0]}); profile them with "
                f"'mobile-nas lut build --space {space.name} --out T.json --resume'")
    predictor = LatencyPredictor(table)
    return (lambda arch: float(predictor.predict(arch).total_ms)), f"table:{path}"


def measured_latency_fn() -> tuple[LatencyFn, str]:
    """Latency measured end to end: export to ONNX and time it in onnxruntime."""
    from mobile_nas.cost.latency.measure import measure_arch_ms

    return (lambda arch: float(measure_arch_ms(arch))), "measured"
