"""Multiply-accumulate (MAC) and parameter counts with fvcore.

Convention: one fused multiply-add counts once, as fvcore's ``FlopCountAnalysis`` counts
it (fvcore's "flops" are MACs). We count the operators that carry the arithmetic of a
deployed network — convolutions, linear layers, matrix products — and not batch norm,
pooling or upsampling (batch norm is folded into the convolution at export; pooling is not a
multiply-add). This matches the figures torchvision publishes for its models
(``MobileNet_V2_Weights.IMAGENET1K_V1.meta["_ops"]`` = 0.301 G for mobilenet_v2).
Operators fvcore cannot count are reported in :attr:`MacCount.uncounted`, never printed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

#: fvcore handlers we switch off: real ops, but not multiply-accumulates of the deployed net.
NOT_MACS = (
    "aten::batch_norm", "aten::group_norm", "aten::layer_norm", "aten::instance_norm",
    "aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::adaptive_avg_pool2d",
    "aten::grid_sampler",
)
#: Ops that carry no multiply-adds at all; not worth reporting as uncounted.
_SILENT = (
    "aten::relu", "aten::relu_", "aten::hardtanh", "aten::hardtanh_", "aten::hardswish",
    "aten::hardswish_", "aten::hardsigmoid", "aten::sigmoid", "aten::add", "aten::add_",
    "aten::mul", "aten::mean", "aten::flatten", "aten::dropout", "aten::max_pool2d",
    "aten::avg_pool2d", "aten::cat", "aten::clone", "aten::sub", "aten::div", "aten::zeros",
)

@dataclass(frozen=True)
class MacCount:
    """MACs of one forward pass at batch 1, split by operator; ``uncounted`` lists ops fvcore
    had no handler for (with their call counts)."""

    macs: int
    by_operator: dict[str, int] = field(default_factory=dict)
    uncounted: dict[str, int] = field(default_factory=dict)


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> MacCount:
    """MACs of ``model`` on one input of shape ``input_shape`` (C, H, W), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():  # fvcore on use: importing this module stays light
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis
            from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS

        x = torch.zeros((1, *input_shape))
        analysis = FlopCountAnalysis(model, x).clear_op_handles()
        analysis.set_op_handle(**{k: v for k, v in _DEFAULT_SUPPORTED_OPS.items()
                                  if k not in NOT_MACS})
        analysis.set_op_handle(**dict.fromkeys(NOT_MACS + _SILENT))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            total = int(analysis.total())
            by_op = {k: int(v) for k, v in analysis.by_operator().items() if v}
            uncounted = dict(analysis.unsupported_ops())
    finally:
        model.train(was_training)
    return MacCount(total, by_op, uncounted)


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
