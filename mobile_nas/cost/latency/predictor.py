"""LatencyPredictor: a network's latency from its runtime layers' table entries through the
table's calibration (the per-op network model, in fractions of the anchor, or the linear
form in ms)."""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass

from mobile_nas.cost.latency.errors import LatencyTableError, MissingEntryError
from mobile_nas.cost.latency.requirements import TableRequest, ensure_usable
from mobile_nas.cost.latency.table import LatencyTable
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.layers import LayerKey


@dataclass(frozen=True)
class LatencyPrediction:
    """Predicted end-to-end latency and each layer's isolated table latency (ms).

    ``sum_ms`` is the plain sum of ``per_layer``; ``total_ms`` applies the table's
    calibration (equal to ``sum_ms`` for an uncalibrated table). ``statistic`` names what
    ``total_ms`` is (:attr:`LatencyTable.predicts`, e.g. ``"wall-clock median"``). A relative
    table (schema 3) predicts ``anchor_fraction``, the network's latency as a fraction of the
    anchor's; ``total_ms`` is that times ``anchor_ms`` (the anchor as timed when the table
    was calibrated, or as re-timed on the device at hand). ``measured``: the network is one
    the relative calibration was fitted on, and the prediction is its measurement there
    (the space's references always are: see :class:`LatencyPredictor`). ``passes``: how many
    builds of the table the prediction is the median of (:attr:`LatencyTable.passes`).
    """

    total_ms: float
    per_layer: list[tuple[LayerKey, float]]
    sum_ms: float = 0.0
    calibrated: bool = False
    statistic: str = ""
    anchor_fraction: float | None = None
    anchor_ms: float | None = None
    measured: bool = False
    passes: int = 1


class LatencyPredictor:
    """Predicts with one :class:`LatencyTable`. Thread-safe; the table is immutable.

    The table must be usable (:func:`~.requirements.ensure_usable`: a calibration with a
    held-out check, and the precision/threads/provider of ``request``), else the constructor
    raises :class:`~.errors.LatencyTableError` naming the ``lut build`` command that fixes
    it. :meth:`predict` raises :class:`MissingEntryError` for layers the table lacks.

    A network a relative calibration was fitted on is predicted by its measured fraction of
    the anchor in that calibration run, not by the model, where the calibration says so
    (``Calibration.measured_lookup``): the device has timed it. So a
    reference (every calibration fits on the space's references) is 1.00x itself, and a
    ratio to it carries the model's error on the candidate only, not also its error on the
    reference (on 2026-12-07 an Intel-built fmnist28 table put every ratio to
    fmnist28_mnasnet 7.4% high on average through that second error). On that machine the
    reference's ratio to other networks also moved up to 6% between runs a minute apart,
    so the measurement brings its own error; calibrations do not set it by default.

    A table with :attr:`~LatencyTable.passes` predicts the median of every build's anchor
    fraction (each build through its own entries and calibration), in ms through this
    predictor's ``anchor_ms``.
    """

    def __init__(self, table: LatencyTable, *, table_path: str | os.PathLike[str] | None = None,
                 request: TableRequest | None = None, anchor_ms: float | None = None) -> None:
        ensure_usable(table, path=table_path, request=request)
        if anchor_ms is not None and not anchor_ms > 0:
            raise LatencyTableError(f"anchor_ms must be positive, got {anchor_ms!r}")
        self.table = table
        self.table_path = None if table_path is None else str(table_path)
        cal = table.calibration
        #: ms of the anchor that converts fractions to ms (None: the table is not relative)
        self.anchor_ms = (anchor_ms or cal.anchor_ms) if cal is not None and cal.relative \
            else None
        #: arch string -> measured fraction of the anchor, of the relative calibration's
        #: fitted networks
        self.measured_fractions: dict[str, float] = (
            {a: m / cal.anchor_ms for a, m in zip(cal.archs, cal.measured_ms, strict=True)}
            if cal is not None and cal.anchor_ms is not None and cal.measured_lookup else {})
        #: one predictor per further build of the table (see class)
        self.pass_predictors = [LatencyPredictor(p, table_path=table_path, request=request)
                                for p in table.passes]

    @property
    def statistic(self) -> str:
        """What predictions are (:attr:`LatencyTable.predicts`)."""
        return self.table.predicts

    def layer_ms(self, arch: Architecture) -> list[tuple[LayerKey, float]]:
        keys = arch.search_space.runtime_layers(arch)
        missing = self.table.missing(keys)
        if missing:
            raise MissingEntryError(missing, space=arch.space, arch=arch.to_string(),
                                    table=self.table_path)
        stat = self.table.statistic
        return [(k, self.table.entries[k.id].value(stat)) for k in keys]

    def predict(self, arch: Architecture) -> LatencyPrediction:
        if arch.space != self.table.space:
            raise LatencyTableError(f"the latency table is for space {self.table.space!r}, "
                                    f"the architecture for {arch.space!r}")
        per_layer = self.layer_ms(arch)
        sum_ms = sum(ms for _, ms in per_layer)
        cal = self.table.calibration
        fraction = None
        if cal is None:
            total = sum_ms
        elif self.anchor_ms is not None:  # set where the calibration is relative
            fraction = self.measured_fractions.get(arch.to_string())
            if fraction is None:
                fraction = cal.predict_units([(k, self.table.anchor_fraction(k.id))
                                              for k, _ in per_layer])
            if self.pass_predictors:
                fraction = statistics.median([fraction] + [
                    q.predict(arch).anchor_fraction or math.nan for q in self.pass_predictors])
            total = fraction * float(self.anchor_ms)
        else:
            total = cal.predict_units(per_layer)
        return LatencyPrediction(total_ms=float(total), per_layer=per_layer,
                                 sum_ms=float(sum_ms), calibrated=cal is not None,
                                 statistic=self.table.predicts, anchor_fraction=fraction,
                                 anchor_ms=self.anchor_ms,
                                 measured=arch.to_string() in self.measured_fractions,
                                 passes=1 + len(self.pass_predictors))

    def predict_ms(self, arch: Architecture) -> float:
        return self.predict(arch).total_ms
