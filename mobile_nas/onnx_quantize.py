"""INT8 static quantization (QDQ) of an ONNX file with onnxruntime, calibrated on uint8
images: the one quantizer of ``mobile-nas export --int8`` and of INT8 latency tables
(``lut build --precision int8``). Below ``cost`` and ``export`` in the layering, so both use
it."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from mobile_nas.atomic import atomic_path
from mobile_nas.errors import MobileNasError

#: The input name of exported deployables (``mobile_nas.export.onnx_export.INPUT_NAME``).
DEFAULT_INPUT_NAME = "pixels"


class QuantizationError(MobileNasError):
    """The model cannot be quantized as asked (unknown method, no images, no folder)."""


def pixels(images_uint8: torch.Tensor) -> np.ndarray:
    """uint8 N×C×H×W → float32 in [0, 1], the exported model's input."""
    return (images_uint8.float() / 255.0).numpy()


class _Calibration:
    """An onnxruntime ``CalibrationDataReader`` over uint8 images, in batches, fed as
    float pixels in [0, 1] to the input named ``input_name``."""

    def __init__(self, images_uint8: torch.Tensor, batch_size: int = 64,
                 input_name: str = DEFAULT_INPUT_NAME) -> None:
        self._batches = [pixels(images_uint8[i:i + batch_size])
                         for i in range(0, len(images_uint8), batch_size)]
        self._input_name = input_name
        self._it = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self._input_name: batch}

    def rewind(self) -> None:
        self._it = iter(self._batches)


def quantize_static_int8(fp32_path: str | os.PathLike, out: str | os.PathLike,
                  calibration_images: torch.Tensor, *, per_channel: bool = True,
                  method: str = "minmax") -> None:
    """Writes a QDQ INT8 model to ``out``: int8 weights, symmetric (zero point 0), per
    output channel when ``per_channel``; uint8 (asymmetric) activations. That is the form
    onnxruntime's NNAPI provider takes for quantized convolutions (uint8 activations, int8
    weights with zero point 0, per channel from Android API 29). onnxruntime's XNNPACK
    provider takes per-channel weights only with int8 activations, so it is not the target.

    The fp32 model is first pre-processed (shape inference, graph optimization, BN folding),
    as onnxruntime recommends; ``calibration_images`` (uint8 N×C×H×W) set the activation
    ranges (``method``: minmax, entropy or percentile), fed as float pixels in [0, 1] to the
    model's one input (``pixels`` for deployables; latency tables quantize single layers and
    networks whose input is named ``input``). A model with a fixed batch (the mobile
    profile, table exports) is calibrated in batches of that size.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise QuantizationError(f"unknown calibration method {method!r}; known: "
                                f"{', '.join(methods)}")
    if len(calibration_images) == 0:
        raise QuantizationError("INT8 calibration needs at least one image")
    out = Path(out)
    if not out.parent.is_dir():
        raise QuantizationError(f"cannot write {str(out)!r}: folder {str(out.parent)!r} "
                                f"does not exist")
    with tempfile.TemporaryDirectory(prefix="mobile-nas-q-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        # onnxruntime's histogram calibrators print progress on stdout; keep stdout clean.
        # Its per-channel pass logs a root-logger warning for every unfused BatchNorm (cell
        # networks have many) and quantizes those per tensor: expected, so not shown.
        name, batch = _model_input(pre)
        with atomic_path(out) as tmp_out, contextlib.redirect_stdout(io.StringIO()), \
                _root_log_level(logging.ERROR):
            quantize_static(str(pre), str(tmp_out),
                            _Calibration(calibration_images, batch or 64, name),
                            quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=methods[method],
                            extra_options={"WeightSymmetric": True,
                                           "ActivationSymmetric": False})


def _model_input(path: Path) -> tuple[str, int | None]:
    """The model input's name, and its batch size when fixed (else None)."""
    import onnx

    graph_input = onnx.load(str(path), load_external_data=False).graph.input[0]
    dim = graph_input.type.tensor_type.shape.dim[0]
    return graph_input.name, (dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0
                              else None)


@contextlib.contextmanager
def _root_log_level(level: int):
    root = logging.getLogger()
    before = root.level
    root.setLevel(max(level, before))
    try:
        yield
    finally:
        root.setLevel(before)
