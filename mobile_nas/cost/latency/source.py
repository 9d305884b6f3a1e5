"""Where a latency comes from, as one typed object: a lookup table (its path, precision,
threads, provider and the statistic it predicts) or the network measured end to end.

:func:`open_table` is the one "resolve → load → predictor" sequence: an explicit table,
else a run's recorded one, else the table shipped for the space at the precision asked
(:func:`~.ondemand.resolve_table`), loaded and checked for what the caller needs
(:class:`~.requirements.TableRequest`). Search, export metadata, the report, the demo and
``cost`` all get their predictions through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Protocol

from mobile_nas.cost.latency import measure
from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.ondemand import resolve_table
from mobile_nas.cost.latency.predictor import LatencyPrediction, LatencyPredictor
from mobile_nas.cost.latency.requirements import TableRequest, table_settings
from mobile_nas.cost.latency.statistic import WALL_MEDIAN
from mobile_nas.cost.latency.table import LatencyTable
from mobile_nas.space.architecture import Architecture


class LatencySource(Protocol):
    """Milliseconds for an architecture, and what they are: ``name`` is what a run records
    (``"table:PATH"``, ``"measured:onnxruntime:1thread"``), ``statistic`` what the
    milliseconds are (e.g. ``"wall-clock median"``), for ``precision``, ``threads`` and
    ``provider``. :class:`TableLatency` and :class:`MeasuredLatency` are the two kinds."""

    name: str
    statistic: str
    precision: str
    threads: int
    provider: str

    def predict_ms(self, arch: Architecture) -> float:
        """The latency of ``arch`` in milliseconds."""


@dataclass(frozen=True)
class TableLatency:
    """A latency table ready to predict. ``path`` as the caller gave it (or the shipped
    file's); ``explicit``: the caller named it (a ``--table`` or a run's recorded table)
    rather than taking the space's shipped one."""

    path: str | os.PathLike[str]
    predictor: LatencyPredictor
    explicit: bool = True

    @property
    def table(self) -> LatencyTable:
        return self.predictor.table

    @property
    def name(self) -> str:
        return f"table:{self.path}"

    @property
    def statistic(self) -> str:
        return self.predictor.statistic

    @property
    def precision(self) -> str:
        return str(table_settings(self.table)["precision"])

    @property
    def threads(self) -> int:
        return int(table_settings(self.table)["threads"])

    @property
    def provider(self) -> str:
        return str(table_settings(self.table)["provider"])

    def predict(self, arch: Architecture) -> LatencyPrediction:
        """The prediction with its per-layer breakdown (:class:`LatencyPrediction`)."""
        return self.predictor.predict(arch)

    def predict_ms(self, arch: Architecture) -> float:
        return float(self.predictor.predict(arch).total_ms)

    def at_anchor_ms(self, anchor_ms: float) -> TableLatency:
        """This table predicting in the milliseconds of a device whose anchor network takes
        ``anchor_ms`` (a relative table; others predict as before)."""
        return replace(self, predictor=LatencyPredictor(
            self.table, table_path=str(self.path), anchor_ms=anchor_ms))


@dataclass(frozen=True)
class MeasuredLatency:
    """Each architecture exported whole (at ``precision``; int8 as INT8 tables quantize it)
    and timed with onnxruntime's CPU provider: the wall-clock median of 100 runs after 10
    warm-up runs."""

    threads: int = 1
    precision: str = "fp32"

    @property
    def name(self) -> str:
        return f"measured:onnxruntime:{self.threads}thread"

    @property
    def statistic(self) -> str:
        return WALL_MEDIAN.name

    @property
    def provider(self) -> str:
        return "CPUExecutionProvider"

    def predict_ms(self, arch: Architecture) -> float:
        return float(measure.measure_arch_ms(arch, threads=self.threads,
                                             precision=self.precision).median_ms)


def open_table(space_name: str, *candidates: str | os.PathLike[str] | None,
               precision: str = "fp32", request: TableRequest | None = None,
               anchor_ms: float | None = None,
               refuse_other_space: bool = False) -> TableLatency | None:
    """The table for ``space_name`` (the first of ``candidates`` given, else the one shipped
    for the space at ``precision``; :func:`~.ondemand.resolve_table`), loaded, with its
    predictor; None when there is none.

    Raises :class:`~.errors.LatencyTableError` for a file that is no table, one that does
    not meet ``request`` (naming the ``lut build`` command that makes one), and, with
    ``refuse_other_space``, one built for another space (otherwise predicting an
    architecture of another space raises)."""
    path = resolve_table(space_name, *candidates, precision=precision)
    if path is None:
        return None
    table = LatencyTable.load(path)
    if refuse_other_space and table.space != space_name:
        raise LatencyTableError(f"latency table {str(path)!r} is for space {table.space!r}, "
                                f"not {space_name!r}")
    predictor = LatencyPredictor(table, table_path=str(path), request=request,
                                 anchor_ms=anchor_ms)
    return TableLatency(path=path, predictor=predictor,
                        explicit=any(bool(c) for c in candidates))
