"""What ``mobile-nas cost`` and ``mobile-nas transfer`` report: MACs, params and latency
(predicted by a table, measured with onnxruntime) of one architecture, or of a cell
architecture beside its restacked version."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobile_nas.atomic import atomic_write_json
from mobile_nas.cost.latency.errors import LatencyTableError, MissingEntryError
from mobile_nas.cost.latency.estimate import arch_latency
from mobile_nas.cost.latency.ondemand import resolve_table
from mobile_nas.cost.model_costs import model_costs
from mobile_nas.errors import MobileNasError
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.scaled import SizeKnobs, scalable, transfer_arch

if TYPE_CHECKING:
    from mobile_nas.cost.latency.requirements import TableRequest

#: Timed runs of ``measure=True`` (median reported), after 10 warm-up runs.
MEASURE_RUNS = 100


@dataclass(frozen=True)
class CostSummary:
    """Costs of one architecture. ``latency_ms``: the table's calibrated prediction (None
    without a table); ``measured_ms``: onnxruntime end to end (None unless measured); both
    rounded to 0.1 µs; each with the statistic it is (e.g. "wall-clock median") and the
    threads, provider and precision it is for. ``latency_table``: the table that predicted
    ``latency_ms``; ``note``: why the space's shipped table gave no prediction (None when
    it did, or when none was asked for)."""

    arch: Architecture
    macs: int
    params: int
    latency_ms: float | None = None
    measured_ms: float | None = None
    latency_statistic: str | None = None
    measured_statistic: str | None = None
    threads: int | None = None
    provider: str | None = None
    precision: str | None = None
    latency_table: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        """``arch, space, macs, params`` and whichever latencies are known, with their
        statistics, the table that predicted, threads, provider and precision."""
        record: dict[str, Any] = {"arch": self.arch.to_string(), "space": self.arch.space,
                                  "macs": self.macs, "params": self.params}
        for key in ("latency_ms", "latency_statistic", "latency_table", "measured_ms",
                    "measured_statistic"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        if self.latency_ms is not None or self.measured_ms is not None:
            record.update(threads=self.threads, provider=self.provider,
                          precision=self.precision)
        return record


def summarize_costs(arch: Architecture, *, table: str | os.PathLike[str] | None = None,
                    measure: bool = False, request: TableRequest | None = None,
                    shipped_table: bool = False) -> CostSummary:
    """MACs and params of ``arch``; with ``table`` its predicted latency (a table that does
    not meet ``request`` is refused); with ``measure`` its ONNX export (at the table's or
    requested precision) timed with onnxruntime
    (:func:`mobile_nas.cost.latency.estimate.arch_latency`: the statistic the table
    predicts, the wall-clock median of :data:`MEASURE_RUNS` runs without one).

    ``shipped_table`` (without ``table``): predict with the space's shipped table for the
    requested precision, as ``search`` does; where it cannot predict ``arch`` (none shipped,
    layers it lacks, other settings requested) the summary has no prediction and ``note``
    says why, instead of an error."""
    costs = model_costs(arch)
    note = None
    defaulted = table is None and shipped_table
    if defaulted:
        table, note = _shipped_table(arch, request)
    if not (table or measure):
        return CostSummary(arch, costs.macs, costs.params, note=note)
    try:
        lat = arch_latency(arch, table_path=table, measure=measure, request=request,
                           warmup=10, runs=MEASURE_RUNS)
    except (LatencyTableError, MissingEntryError) as exc:  # prediction, before measuring
        if not defaulted or table is None:
            raise
        note = f"the shipped table {os.path.basename(table)} cannot predict it: {exc}"
        if not measure:
            return CostSummary(arch, costs.macs, costs.params, note=note)
        lat = arch_latency(arch, measure=True, request=request, warmup=10, runs=MEASURE_RUNS)
    return CostSummary(arch, costs.macs, costs.params, latency_ms=lat.predicted_ms,
                       measured_ms=lat.measured_ms, latency_statistic=lat.predicted_statistic,
                       measured_statistic=lat.measured_statistic, threads=lat.threads,
                       provider=lat.provider, precision=lat.precision,
                       latency_table=lat.table, note=note)


def _shipped_table(arch: Architecture, request: TableRequest | None
                   ) -> tuple[str | os.PathLike[str] | None, str | None]:
    """(the table shipped for ``arch``'s space at the requested precision, None), or
    (None, why there is none)."""
    precision = (request.precision if request else None) or "fp32"
    path = resolve_table(arch.space, precision=precision)
    if path is None:
        return None, f"no latency table is shipped for space {arch.space!r}"
    return path, None


@dataclass(frozen=True)
class TransferCosts:
    """A cell architecture (``source``) and its cells restacked at another size
    (``target``), each with its costs."""

    source: CostSummary
    target: CostSummary

    @property
    def ratio(self) -> dict[str, float]:
        """target / source for macs, params and the latencies both have, rounded to 0.001."""
        ratio = {"macs": self.target.macs / self.source.macs,
                 "params": self.target.params / self.source.params}
        for key in ("latency_ms", "measured_ms"):
            s, t = getattr(self.source, key), getattr(self.target, key)
            if s is not None and t is not None:
                ratio[key] = t / s
        return {k: round(v, 3) for k, v in ratio.items()}

    def to_json(self) -> dict[str, Any]:
        """``arch`` (the source's string), ``source`` and ``target`` (costs and size knobs),
        ``ratio``."""
        return {"arch": self.source.arch.to_string(), "source": _sized(self.source),
                "target": _sized(self.target), "ratio": self.ratio}

    def save_target(self, path: str | os.PathLike[str]) -> None:
        """Writes the transferred architecture as an arch JSON file (for train, export and
        cost); raises :class:`MobileNasError` when it cannot be written."""
        data = {"schema_version": 1, "space": self.target.arch.space,
                "arch": self.source.arch.to_string(), "macs": self.target.macs,
                "params": self.target.params}
        try:
            atomic_write_json(path, data)
        except OSError as exc:
            raise MobileNasError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None


def _sized(summary: CostSummary) -> dict[str, Any]:
    record = summary.to_json()
    record.pop("arch")
    sp = scalable(summary.arch.search_space)
    record.update(cells=sp.cells, filters=sp.filters, input_shape=list(sp.input_shape),
                  num_classes=sp.num_classes)
    return record


def transfer_costs(arch: Architecture, knobs: SizeKnobs, *,
                   table: str | os.PathLike[str] | None = None,
                   source_table: str | os.PathLike[str] | None = None,
                   measure: bool = False) -> TransferCosts:
    """``arch`` (of a cell space) and its cells in the space ``knobs`` resize it to (knobs
    left out keep the source's values), costed as :func:`summarize_costs` does: ``table``
    for the target, ``source_table`` for the source. Raises :class:`SpaceError` for a space
    without size knobs."""
    target = transfer_arch(arch, knobs.resize(arch.search_space))
    return TransferCosts(summarize_costs(arch, table=source_table, measure=measure),
                         summarize_costs(target, table=table, measure=measure))
