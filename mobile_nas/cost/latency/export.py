"""The single-layer and whole-model ONNX export used by ``lut build``, ``lut bundle`` and
end-to-end measurement (one code path, so every table times what the bundle ships)."""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from mobile_nas.space.layers import LayerKey

DEFAULT_OPSET = 17


def layer_input_shape(key: LayerKey) -> tuple[int, int, int, int]:
    """The N×C×H×W input of one layer (batch 1)."""
    return (1, key.cin, key.h, key.w)


def export_module_onnx(module: nn.Module, input_shape: tuple[int, ...], *,
                       opset: int = DEFAULT_OPSET) -> bytes:
    """``module`` in eval mode as ONNX bytes (TorchScript exporter, constant folding)."""
    module = module.eval()
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(input_shape),), buf, dynamo=False,
                          opset_version=opset, input_names=["input"], output_names=["output"],
                          do_constant_folding=True)
    return buf.getvalue()


def export_layer_onnx(key: LayerKey, *, opset: int = DEFAULT_OPSET) -> bytes:
    """One layer, built by :func:`mobile_nas.models.build_layer` exactly as networks build it,
    initialised as networks are, exported to ONNX bytes."""
    from mobile_nas.models import build_layer
    from mobile_nas.models.blocks import init_weights

    torch.manual_seed(0)
    module = build_layer(key)
    init_weights(module)
    return export_module_onnx(module, layer_input_shape(key), opset=opset)


def export_arch_onnx(arch, *, opset: int = DEFAULT_OPSET) -> bytes:
    """A whole network (:func:`mobile_nas.models.build_model`) as ONNX bytes, batch 1."""
    from mobile_nas.models import build_model

    torch.manual_seed(0)
    model = build_model(arch)
    return export_module_onnx(model, (1, *arch.search_space.input_shape), opset=opset)
