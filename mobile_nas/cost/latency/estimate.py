"""The latency of one architecture as ``cost`` reports it: predicted by a table and/or
measured end to end, the two always the same statistic, named."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from mobile_nas.cost.latency import measure as end_to_end
from mobile_nas.cost.latency.requirements import TableRequest
from mobile_nas.cost.latency.source import open_table
from mobile_nas.cost.latency.statistic import WALL_MEDIAN, LatencyStatistic
from mobile_nas.space.architecture import Architecture


@dataclass(frozen=True)
class ArchLatency:
    """``predicted_ms`` (None without a table) is ``predicted_statistic`` of the network;
    ``measured_ms`` (None unless measured) is ``measured_statistic``, the same one whenever
    both are there; both for ``threads``, ``provider`` and ``precision``."""

    predicted_ms: float | None = None
    predicted_statistic: str | None = None
    table: str | None = None
    measured_ms: float | None = None
    measured_statistic: str | None = None
    threads: int = 1
    provider: str = "CPUExecutionProvider"
    precision: str = "fp32"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def arch_latency(arch: Architecture, *, table_path: str | os.PathLike[str] | None = None,
                 measure: bool = False, request: TableRequest | None = None,
                 warmup: int = 10, runs: int = 100) -> ArchLatency:
    """Predicts ``arch`` with the table at ``table_path`` (refused unless it meets
    ``request``, see :func:`~.requirements.ensure_usable`) and/or measures it: exported
    whole at the requested (else the table's, else fp32) precision (int8: the INT8 QDQ
    export, quantized as INT8 tables quantize it), timed with onnxruntime with the requested
    (else the table's, else 1 thread, CPU) threads and provider, summarized by the statistic
    the table predicts (the wall-clock median without a table, what ``bench`` reports)."""
    request = request or TableRequest()
    rec: dict[str, Any] = {}
    statistic: LatencyStatistic = WALL_MEDIAN
    md: dict[str, Any] = {}
    source = open_table(arch.space, table_path, request=request) if table_path else None
    if source is not None:
        pred = source.predict(arch)
        rec.update(predicted_ms=round(pred.total_ms, 4), predicted_statistic=pred.statistic,
                   table=str(table_path))
        statistic, md = source.table.prediction_statistic, dict(source.table.metadata)
    threads = request.threads or int(md.get("threads", 1))
    provider = request.provider or str(md.get("provider", "CPUExecutionProvider"))
    precision = request.precision or str(md.get("precision", "fp32"))
    if measure:
        timing = end_to_end.measure_arch_ms(arch, threads=threads, provider=provider,
                                            clock=statistic.clock, warmup=warmup, runs=runs,
                                            opset=int(md.get("opset", 17)),
                                            opt_level=str(md.get("opt_level", "all")),
                                            precision=precision)
        rec.update(measured_ms=round(statistic.of(timing), 4),
                   measured_statistic=statistic.name)
    return ArchLatency(threads=threads, provider=provider, precision=precision, **rec)
