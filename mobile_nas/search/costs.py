"""Costs of an architecture: latency (table, predictor or measurement), MACs and parameters."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from mobile_nas.cost.flops import count_macs, count_params
from mobile_nas.cost.latency import TableMismatchError, TableRequest
from mobile_nas.cost.latency.errors import LatencyTableError, TableSettingError
from mobile_nas.cost.latency.ondemand import OnDemandPredictor, check_extendable, prepare_extension
from mobile_nas.cost.latency.source import MeasuredLatency, open_table
from mobile_nas.cost.model_costs import model_costs
from mobile_nas.errors import SettingError
from mobile_nas.models import build_layer
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.layers import LayerKey

if TYPE_CHECKING:
    from mobile_nas.cost.latency.table import LatencyTable

LatencyFn = Callable[[Architecture], float]


class CostError(SettingError):
    """No usable latency source (missing or incomplete table) for the settings: the fields of
    :class:`~mobile_nas.errors.SettingError`."""


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
            macs, params = macs_params(arch)
            self._cache[arch] = Costs(float(self.latency_fn(arch)), macs, params)
        return self._cache[arch]

    def describe(self) -> dict[str, Any]:
        return {"latency": self.source}


def macs_params(arch: Architecture) -> tuple[int, int]:
    """fvcore MACs and parameters of ``build_model(arch)``.

    Spaces whose ``costs_are_layer_sums`` (networks exactly the sequence of their layers) sum
    per-layer counts cached by :class:`LayerKey` (equal to
    :func:`mobile_nas.cost.model_costs.model_costs`, tested; ~1 s → ~1 ms per architecture
    once the layers are known). Other spaces count the whole network.
    """
    space = arch.search_space
    if not space.costs_are_layer_sums:
        mc = model_costs(arch)
        return int(mc.macs), int(mc.params)
    per_layer = [_layer_macs_params(k) for k in space.layers(arch)]
    return sum(m for m, _ in per_layer), sum(p for _, p in per_layer)


@cache
def _layer_macs_params(key: LayerKey) -> tuple[int, int]:
    layer = build_layer(key)
    return int(count_macs(layer, (key.cin, key.h, key.w)).macs), int(count_params(layer))


def table_latency_fn(space: SearchSpace, table_path: str | os.PathLike[str] | None = None, *,
                     precision: str = "fp32", profile_missing: bool | None = None,
                     report: Callable[[str], None] | None = None) -> tuple[LatencyFn, str]:
    """The predictor of a latency table for ``precision`` (default: the table shipped for
    the space at that precision, see :func:`~mobile_nas.cost.latency.resolve_table`).

    Checks up front that the table was built for ``precision`` (else
    :class:`~mobile_nas.cost.latency.TableMismatchError`, naming the ``lut build`` command
    that makes one). A table lacking layers of the space is refused up front
    (:class:`CostError`, before any study is touched) unless ``profile_missing``: then the
    layers of each architecture are timed when it is first costed and added to the table
    (:mod:`mobile_nas.cost.latency.ondemand`; ``report`` gets a line per profiling run).
    ``None`` (the default) profiles for a table this machine timed and refuses the others;
    ``True`` refuses them with the reason. Returns the function and a description of its
    source.
    """
    try:
        source = open_table(space.name, table_path, precision=precision,
                            request=TableRequest(precision=precision),
                            refuse_other_space=True)
    except TableMismatchError as exc:
        if precision != "fp32":
            raise
        have = dict((f, h) for f, h, _ in exc.mismatches)["precision"]
        raise TableSettingError("precision", "{mismatch}; or search its {have} latency with "
                                "{what} {have}", value=precision, mismatch=exc,
                                have=have) from None
    if source is None:
        flag = "" if precision == "fp32" else f" --precision {precision}"
        raise CostError("table", "no latency table is shipped for space {space!r}; build "
                        "one with 'mobile-nas lut build --space {space}{flag} --out T.json' "
                        "and pass {what} T.json (or use {others[0]})", others=("measure",),
                        space=space.name, flag=flag)
    missing = source.table.missing(space.enumerate_layers())
    if missing:
        return _on_demand_latency_fn(space, source.table, source.path, missing,
                                     profile_missing, report)
    return source.predict_ms, source.name


def _on_demand_latency_fn(space: SearchSpace, table: LatencyTable,
                          path: str | os.PathLike[str], missing: list[str],
                          profile_missing: bool | None,
                          report: Callable[[str], None] | None) -> tuple[LatencyFn, str]:
    """The on-demand predictor of an incomplete table, or the up-front refusal."""
    lacks = (f"latency table {str(path)!r} lacks {len(missing)} layers of space "
             f"{space.name!r} (first: {missing[0]})")
    flag = "" if table.precision == "fp32" else f" --precision {table.precision}"
    build = f"'mobile-nas lut build --space {space.name}{flag} --out {path} --resume'"
    if profile_missing is False:
        raise CostError("profile_missing", "{lacks}; complete it with {build}, or search "
                        "with {what} to time each candidate's missing layers when it is "
                        "met and add them to the table", value=False, lacks=lacks,
                        build=build)
    try:
        check_extendable(table, path)
    except LatencyTableError as exc:
        if profile_missing:
            raise
        raise CostError("profile_missing", "{lacks}, and {what} cannot fill it: {cause}",
                        value=profile_missing, lacks=lacks, cause=exc) from None
    predictor = OnDemandPredictor(prepare_extension(space.name, path), report=report)
    return predictor.predict_ms, f"table:{predictor.path}"


def measured_latency_fn(*, threads: int = 1, precision: str = "fp32") -> tuple[LatencyFn, str]:
    """Latency measured end to end: export to ONNX (for ``precision='int8'`` quantized as
    INT8 latency tables quantize it, :mod:`mobile_nas.cost.latency.precision`) and time it
    in onnxruntime (median)."""
    source = MeasuredLatency(threads=threads, precision=precision)
    return source.predict_ms, source.name
