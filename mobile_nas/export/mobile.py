"""The mobile export profile: a batch-1, fixed-shape graph of operators NNAPI and CoreML take.

The training networks stay as they are; export swaps a few modules for equivalents that
export to operators every mobile execution provider of onnxruntime supports (NNAPI,
CoreML NeuralNetwork, CoreML MLProgram; see onnxruntime's ``mobile_helpers/*_supported_ops.md``).
Each rewrite computes the same function (the activations with the operations of PyTorch's own
kernels, in their order), so the export's parity check (fp32 within 1e-4) holds:

==========================  =================================  ==============================
module                      server export (ONNX ops)           mobile export (ONNX ops)
==========================  =================================  ==============================
``nn.Hardswish``            HardSigmoid, Mul                   x * Clip(x + 3, 0, 6) / 6
``nn.Hardsigmoid`` (SE)     HardSigmoid                        Clip(x + 3, 0, 6) / 6
``nn.Flatten``              Flatten                            Reshape (constant shape)
``nn.BatchNorm2d`` not      BatchNormalization                 x * scale + shift (Mul, Add)
right after a conv
``FactorizedReduce``        Pad, Slice, Conv, Concat           Slice, Concat (zeros), Conv
==========================  =================================  ==============================

A BatchNorm right after a ``Conv2d`` in the same ``nn.Sequential`` is folded into the conv by
the exporter, so it stays. Everything else (Conv, Relu, Clip for ReLU6, pools, Gemm, Add,
Concat, Mul) already maps. To add an operator, see CONTRIBUTING.md: register a rewrite here
with :func:`register_rewrite` when its ONNX ops are not in all three lists, and the
per-operator test (``tests/export/test_mobile_ops.py``) checks it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from mobile_nas.export.graph import export_onnx_bytes
from mobile_nas.models.cells import FactorizedReduce
from mobile_nas.torch_onnx import DEFAULT_OPSET

#: ``type → fn(module) -> replacement`` applied by :func:`mobile_graph_model`.
_REWRITES: dict[type, Callable[[nn.Module], nn.Module]] = {}


def register_rewrite(*types: type):
    """Decorator: ``fn(module) -> nn.Module`` replaces modules of ``types`` in the mobile
    export (one rewrite per type; a duplicate raises ``ValueError``)."""

    def wrap(fn):
        for t in types:
            if t in _REWRITES:
                raise ValueError(f"a mobile rewrite for {t.__name__} is already registered")
            _REWRITES[t] = fn
        return fn

    return wrap


class HardSwishClip(nn.Module):
    """``x * Clip(x + 3, 0, 6) / 6``: PyTorch's hardswish kernel, in Clip/Add/Mul/Div."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


class HardSigmoidClip(nn.Module):
    """``Clip(x + 3, 0, 6) / 6``: PyTorch's hardsigmoid kernel, in Clip/Add/Div."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + 3.0, 0.0, 6.0) / 6.0


class FlattenReshape(nn.Module):
    """``Flatten(start_dim)`` as a Reshape to the (fixed) leading dimensions and -1."""

    def __init__(self, start_dim: int) -> None:
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = [int(d) for d in x.shape[:self.start_dim]]  # constants: the shapes are fixed
        return torch.reshape(x, (*lead, -1))


class BatchNormAffine(nn.Module):
    """An eval-mode BatchNorm as ``x * scale + shift`` per channel, which is how PyTorch's
    CPU inference kernel computes it (scale = weight / sqrt(var + eps),
    shift = bias - mean * scale)."""

    scale: torch.Tensor  # buffers
    shift: torch.Tensor

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        if bn.running_var is None or bn.running_mean is None:
            raise ValueError("a batch norm without running statistics has no fixed affine form")
        with torch.no_grad():
            var = bn.running_var.float()
            mean = bn.running_mean.float()
            weight = bn.weight.float() if bn.weight is not None else torch.ones_like(var)
            bias = bn.bias.float() if bn.bias is not None else torch.zeros_like(var)
            scale = weight / torch.sqrt(var + bn.eps)
            shift = bias - mean * scale
        self.register_buffer("scale", scale.view(1, -1, 1, 1))
        self.register_buffer("shift", shift.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


@register_rewrite(FactorizedReduce)
class FactorizedReduceShift(nn.Module):
    """:class:`~mobile_nas.models.cells.FactorizedReduce` without Pad: the one-pixel shift
    ``pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]`` is a Slice and a Concat with constant zeros."""

    def __init__(self, fr: FactorizedReduce) -> None:
        super().__init__()
        self.relu, self.conv1, self.conv2 = fr.relu, fr.conv1, fr.conv2
        self.bn = _rewritten(fr.bn, after_conv=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        n, c, h, w = (int(d) for d in x.shape)  # constants: the shapes are fixed
        if h == 1 or w == 1:  # the shift moves every pixel out
            shifted = torch.zeros(n, c, h, w)
        else:
            shifted = torch.cat([x[:, :, 1:, 1:], torch.zeros(n, c, h - 1, 1)], dim=3)
            shifted = torch.cat([shifted, torch.zeros(n, c, 1, w)], dim=2)
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


@register_rewrite(nn.Hardswish)
def _hardswish(module: nn.Module) -> nn.Module:
    return HardSwishClip()


@register_rewrite(nn.Hardsigmoid)
def _hardsigmoid(module: nn.Module) -> nn.Module:
    return HardSigmoidClip()


@register_rewrite(nn.Flatten)
def _flatten(module: nn.Flatten) -> nn.Module:
    if module.end_dim != -1:
        return module  # not produced by our networks; the usability check would report it
    return FlattenReshape(module.start_dim)


@register_rewrite(nn.BatchNorm2d)
def _batchnorm(module: nn.BatchNorm2d) -> nn.Module:
    return BatchNormAffine(module)


def _rewritten(module: nn.Module, *, after_conv: bool) -> nn.Module:
    """``module`` rewritten in place for the mobile graph: a module of a registered type is
    replaced whole, any other is walked; a BatchNorm right after a conv in an
    ``nn.Sequential`` is kept, as the exporter folds it into the conv."""
    fn = _REWRITES.get(type(module))
    if fn is not None and not (isinstance(module, nn.BatchNorm2d) and after_conv):
        return fn(module)
    previous: nn.Module | None = None
    for name, child in list(module.named_children()):
        folded = isinstance(module, nn.Sequential) and isinstance(previous, nn.Conv2d)
        new = _rewritten(child, after_conv=folded)
        if new is not child:
            setattr(module, name, new)
        previous = child
    return module


def mobile_graph_model(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) whose modules export to mobile-EP operators; ``model``
    itself is not changed."""
    return _rewritten(copy.deepcopy(model).eval(), after_conv=False)


def export_mobile_onnx_bytes(model: nn.Module, input_shape: tuple[int, int, int], *,
                             opset: int = DEFAULT_OPSET) -> bytes:
    """Serialized ONNX of ``model`` in the mobile profile: rewritten modules, batch 1, all
    shapes fixed."""
    return export_onnx_bytes(mobile_graph_model(model), input_shape, opset=opset,
                             dynamic_batch=False)
