"""Latency of architectures on a target device.

Per-operator lookup tables built by exporting each :class:`~mobile_nas.space.LayerKey` to
ONNX and timing it with onnxruntime (:mod:`.profiler`, :mod:`.runner`), device bundles and
their import (:mod:`.bundle`), a calibrated predictor (:mod:`.predictor`), end-to-end
measurement (:mod:`.measure`) and predicted-vs-measured checks (:mod:`.check`).
"""

from mobile_nas.cost.latency.errors import (
    BundleError,
    LatencyTableError,
    MeasureError,
    MissingEntryError,
)
from mobile_nas.cost.latency.predictor import LatencyPrediction, LatencyPredictor
from mobile_nas.cost.latency.table import (
    Calibration,
    LatencyTable,
    LayerLatency,
    resolve_table,
    shipped_table_path,
)

__all__ = [
    "BundleError", "Calibration", "LatencyPrediction", "LatencyPredictor", "LatencyTable",
    "LatencyTableError", "LayerLatency", "MeasureError", "MissingEntryError",
    "resolve_table", "shipped_table_path",
]
