"""The single-layer and whole-model ONNX export used by ``lut build``, ``lut bundle`` and
end-to-end measurement (one code path, so every table times what the bundle ships).

Thin wrappers over :func:`mobile_nas.torch_onnx.torch_to_onnx` (the one exporter): a layer
key or an architecture in, ONNX bytes out (batch 1, zero input named ``input``), at the
table's precision: fp32, or that export quantized as ``export --int8`` quantizes
(:mod:`.precision`).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from mobile_nas.cost.latency.precision import at_precision
from mobile_nas.models import build_layer, build_model
from mobile_nas.models.blocks import init_weights
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.layers import LayerKey
from mobile_nas.torch_onnx import DEFAULT_OPSET, torch_to_onnx

__all__ = ["DEFAULT_OPSET", "export_arch_onnx", "export_layer_onnx", "export_module_onnx",
           "layer_input_shape"]


def layer_input_shape(key: LayerKey) -> tuple[int, int, int, int]:
    """The N×C×H×W input of one layer (batch 1)."""
    return (1, key.cin, key.h, key.w)


def export_module_onnx(module: nn.Module, input_shape: tuple[int, ...], *,
                       opset: int = DEFAULT_OPSET) -> bytes:
    """``module`` in eval mode as ONNX bytes, traced on zeros of ``input_shape`` (fixed
    shapes). Every exporter warning is silenced: ``lut build`` exports thousands of layers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch_to_onnx(module, torch.zeros(input_shape), opset=opset)


def export_layer_onnx(key: LayerKey, *, opset: int = DEFAULT_OPSET,
                      precision: str = "fp32") -> bytes:
    """One layer, built by :func:`mobile_nas.models.build_layer` exactly as networks build it,
    initialised as networks are, exported to ONNX bytes (INT8 QDQ for ``precision='int8'``,
    see :mod:`.precision`)."""
    torch.manual_seed(0)
    module = build_layer(key)
    init_weights(module)
    shape = layer_input_shape(key)
    return at_precision(export_module_onnx(module, shape, opset=opset), shape, precision)


def export_arch_onnx(arch: Architecture, *, opset: int = DEFAULT_OPSET,
                     precision: str = "fp32") -> bytes:
    """A whole network (:func:`mobile_nas.models.build_model`) as ONNX bytes, batch 1 (INT8
    QDQ for ``precision='int8'``, see :mod:`.precision`)."""
    torch.manual_seed(0)
    model = build_model(arch)
    shape = (1, *arch.search_space.input_shape)
    return at_precision(export_module_onnx(model, shape, opset=opset), shape, precision)
