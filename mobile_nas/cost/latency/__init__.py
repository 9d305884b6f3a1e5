"""Latency of architectures on a target device.

Per-operator lookup tables built by exporting each :class:`~mobile_nas.space.LayerKey` to
ONNX (fp32, or its INT8 QDQ form, :mod:`.precision`) and timing it with onnxruntime
(:mod:`.profiler`, :mod:`.runner`), device bundles and their import (:mod:`.bundle`), a
calibration judged on held-out networks (:mod:`.calibrate`, :mod:`.build`), a predictor
that refuses unchecked or mismatched tables (:mod:`.predictor`, :mod:`.requirements`),
end-to-end measurement (:mod:`.measure`, :mod:`.estimate`), named statistics
(:mod:`.statistic`) and predicted-vs-measured checks (:mod:`.check`).
"""

from mobile_nas.cost.latency.errors import (
    BundleError,
    LatencyTableError,
    MeasureError,
    MissingEntryError,
    TableMismatchError,
    UncheckedCalibrationError,
)
from mobile_nas.cost.latency.ondemand import resolve_table
from mobile_nas.cost.latency.predictor import LatencyPrediction, LatencyPredictor
from mobile_nas.cost.latency.requirements import TableRequest, ensure_usable
from mobile_nas.cost.latency.statistic import WALL_MEDIAN, LatencyStatistic
from mobile_nas.cost.latency.table import (
    Calibration,
    HeldOutCheck,
    LatencyTable,
    LayerLatency,
    shipped_table_path,
)

__all__ = [
    "WALL_MEDIAN", "BundleError", "Calibration", "HeldOutCheck", "LatencyPrediction",
    "LatencyPredictor", "LatencyStatistic", "LatencyTable", "LatencyTableError",
    "LayerLatency", "MeasureError", "MissingEntryError", "TableMismatchError", "TableRequest",
    "UncheckedCalibrationError", "ensure_usable", "resolve_table", "shipped_table_path",
]
