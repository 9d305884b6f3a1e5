"""INT8 static quantization (QDQ) with onnxruntime, calibrated on training images: the
export-side name of :func:`mobile_nas.onnx_quantize.quantize_static_int8` (its errors are
:class:`ExportError`)."""

from __future__ import annotations

import os

import torch

from mobile_nas.export.errors import ExportError
from mobile_nas.onnx_quantize import QuantizationError, quantize_static_int8


def quantize_int8(fp32_path: str | os.PathLike, out: str | os.PathLike,
                  calibration_images: torch.Tensor, *, per_channel: bool = True,
                  method: str = "minmax") -> None:
    """Writes the QDQ INT8 form of ``fp32_path`` to ``out`` (see
    :func:`~mobile_nas.onnx_quantize.quantize_static_int8`)."""
    try:
        quantize_static_int8(fp32_path, out, calibration_images, per_channel=per_channel,
                             method=method)
    except QuantizationError as exc:
        raise ExportError(str(exc)) from None
