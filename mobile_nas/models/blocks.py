"""One nn.Module per LayerKey, from torchvision's building blocks.

The same code builds whole networks and the single-layer models a latency table profiles,
so a table entry times exactly what the network runs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

from mobile_nas.errors import ArchError
from mobile_nas.registry import Registry
from mobile_nas.space.layers import LayerKey

_ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
}


def activation(name: str) -> Callable[..., nn.Module]:
    try:
        return _ACTIVATIONS[name]
    except KeyError:
        raise ArchError(f"unknown activation {name!r}; known: {sorted(_ACTIVATIONS)}") from None


def make_divisible(value: float, divisor: int = 8) -> int:
    """Rounds channels as MobileNetV3 does (never below 90% of ``value``)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class MobileBlock(nn.Module):
    """Depthwise-separable (``ds``) or inverted-residual (``mb``) block, optional SE.

    ``ds``: depthwise k×k → [SE] → 1×1 linear projection (MobileNetV2's t=1 block).
    ``mb``: 1×1 expansion → depthwise k×k → [SE] → 1×1 linear projection (MBConv).
    SE squeezes the depthwise output to ``make_divisible(channels * se)`` with a hard sigmoid
    gate, as in MobileNetV3. A residual is added when ``key.residual``.
    """

    def __init__(self, key: LayerKey) -> None:
        super().__init__()
        act = activation(key.act)
        hidden = key.cin * key.expansion
        layers: list[nn.Module] = []
        if key.op == "mb" and key.expansion != 1:
            layers.append(Conv2dNormActivation(key.cin, hidden, 1, activation_layer=act))
        layers.append(Conv2dNormActivation(hidden, hidden, key.kernel, stride=key.stride,
                                           groups=hidden, activation_layer=act))
        if key.se:
            layers.append(SqueezeExcitation(hidden, make_divisible(hidden * key.se),
                                            scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(hidden, key.cout, 1, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.use_residual = key.residual
        if key.residual and (key.stride != 1 or key.cin != key.cout):
            raise ArchError(f"residual needs stride 1 and equal channels: {key.id}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class Classifier(nn.Sequential):
    """Global average pool → dropout → linear."""

    def __init__(self, key: LayerKey, dropout: float = 0.0) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout),
                         nn.Linear(key.cin, key.cout))


LayerBuilder = Callable[..., nn.Module]
#: layer op → ``fn(key, *, dropout) -> nn.Module``
LAYER_BUILDERS: Registry[LayerBuilder] = Registry("layer builder", ArchError)


def register_layer_builder(*ops: str):
    """Decorator: registers ``fn(key, *, dropout) -> nn.Module`` for layer ops (no duplicates).

    Cell spaces register their operators here, so the latency profiler and the model builders
    share one code path for every op.
    """

    def wrap(fn: LayerBuilder) -> LayerBuilder:
        for op in ops:
            LAYER_BUILDERS.register(op, fn)
        return fn

    return wrap


def build_layer(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    """The module for one layer key, by its ``op`` (see :func:`register_layer_builder`)."""
    if key.op not in LAYER_BUILDERS:
        raise ArchError(f"no builder for layer op {key.op!r}; known: "
                        f"{', '.join(LAYER_BUILDERS.names())}")
    builder = LAYER_BUILDERS.get(key.op)
    return builder(key, dropout=dropout)


@register_layer_builder("stem", "head")
def _conv_bn_act(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    return Conv2dNormActivation(key.cin, key.cout, key.kernel, stride=key.stride,
                                activation_layer=activation(key.act))


@register_layer_builder("ds", "mb")
def _mobile_block(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    return MobileBlock(key)


@register_layer_builder("classifier")
def _classifier(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    return Classifier(key, dropout)


def init_weights(model: nn.Module) -> None:
    """torchvision's MobileNet initialisation (Kaiming fan-out convs, small-normal linear)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
