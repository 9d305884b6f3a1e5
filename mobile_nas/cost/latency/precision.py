"""The precision a latency table times: fp32 exports as they are, or their INT8 QDQ form.

An INT8 table (``lut build --precision int8``) times every layer, and calibrates on whole
networks, quantized by the quantizer of ``mobile-nas export --int8``
(:func:`mobile_nas.onnx_quantize.quantize_static_int8`: onnxruntime static QDQ, per-channel
symmetric int8 weights, uint8 activations, MinMax calibration; the form the mobile profile
keeps), applied to the same fp32 export :mod:`.export` writes for fp32 tables. onnxruntime
fuses the Q/DQ pairs into integer kernels when it loads the graph, so the session times
what an INT8 deployable runs.

Calibration data: ``export --int8`` calibrates on training images (uint8 N×C×H×W fed as
pixels in [0, 1]); a single layer has no such images (its input is another layer's
activations), so tables calibrate every model on :data:`CALIBRATION_IMAGES` seeded random
uint8 images of the model's own input shape, fed the same way in batches of 1 (the exports
have batch 1). The ranges they set change the scales and zero points, not the graph or the
kernels that run, so the timing does not depend on them.

A layer quantized alone starts with a QuantizeLinear and ends with a DequantizeLinear that
a network of such layers has only once; the table's calibration (fitted on networks
quantized the same way) absorbs that per-layer difference.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_nas import onnx_quantize
from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.settings import PRECISIONS

if TYPE_CHECKING:
    import torch

#: Random uint8 images that calibrate the activation ranges of one quantized model.
CALIBRATION_IMAGES = 8
CALIBRATION_SEED = 0


def calibration_images(input_shape: Sequence[int], n: int = CALIBRATION_IMAGES,
                       seed: int = CALIBRATION_SEED) -> torch.Tensor:
    """``n`` seeded random uint8 images of ``input_shape`` (N×C×H×W; N is ignored)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *tuple(input_shape)[1:]), dtype=torch.uint8,
                         generator=generator)


def quantize_onnx_int8(model: bytes, input_shape: Sequence[int]) -> bytes:
    """The INT8 QDQ form of the fp32 ONNX ``model`` (input ``input_shape``), quantized as
    ``export --int8`` quantizes (see module)."""
    with tempfile.TemporaryDirectory(prefix="mobile-nas-lut-int8-") as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        fp32.write_bytes(model)
        onnx_quantize.quantize_static_int8(fp32, int8, calibration_images(input_shape))
        return int8.read_bytes()


def at_precision(model: bytes, input_shape: Sequence[int], precision: str) -> bytes:
    """The fp32 ONNX ``model`` as timed at ``precision``: as is for fp32, quantized for
    int8 (:func:`quantize_onnx_int8`)."""
    if precision not in PRECISIONS:
        raise LatencyTableError(f"unknown precision {precision!r}; known: "
                                f"{', '.join(PRECISIONS)}")
    return model if precision == "fp32" else quantize_onnx_int8(model, input_shape)
