"""The deployable's ONNX graph from a torch module: input and output names, the one call
into :func:`mobile_nas.torch_onnx.torch_to_onnx` for both profiles (server: dynamic batch;
mobile: batch 1, every shape fixed). Below :mod:`.onnx_export` (checkpoint → file) and
:mod:`.mobile` (the mobile profile's rewrites), which both use it."""

from __future__ import annotations

import torch
from torch import nn

from mobile_nas.export.errors import ExportError
from mobile_nas.torch_onnx import DEFAULT_OPSET, torch_to_onnx

INPUT_NAME = "pixels"
OUTPUT_NAME = "logits"


def export_onnx_bytes(model: nn.Module, input_shape: tuple[int, int, int], *,
                      opset: int = DEFAULT_OPSET, dynamic_batch: bool = True) -> bytes:
    """Serialized ONNX of ``model`` (eval mode): a dynamic batch axis, or batch 1 and every
    shape fixed (``dynamic_batch=False``, the mobile profile). A wrapper over
    :func:`mobile_nas.torch_onnx.torch_to_onnx` (the one exporter) with the deployable's
    input/output names and a ``torch.rand`` example input."""
    if not 7 <= opset <= 20:
        raise ExportError(f"opset {opset} is not supported; use 7..20 (default {DEFAULT_OPSET})")
    return torch_to_onnx(model, torch.rand(1, *input_shape), opset=opset,
                         input_name=INPUT_NAME, output_name=OUTPUT_NAME,
                         dynamic_batch=dynamic_batch)
