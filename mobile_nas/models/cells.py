"""Cell operators and networks for the NASNet and NAS-Bench-201 spaces.

Every operator of a cell is built from its :class:`LayerKey` by :func:`build_layer` (the ops
are registered with :func:`register_layer_builder`), so a latency table entry times exactly
the module the network runs. Operators follow the reference implementations: DARTS
(``SepConv``, ``DilConv``, ``FactorizedReduce``, ``conv_7x1_1x7``) for NASNet cells and
NAS-Bench-201's ``ReLUConvBN``, ``POOLING``, ``ResNetBasicblock`` and ``TinyNetwork``.
ReLUs are never in place: one cell state feeds several operators.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mobile_nas.errors import ArchError
from mobile_nas.models.blocks import activation, build_layer, init_weights, register_layer_builder
from mobile_nas.models.build import register_builder
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.layers import LayerKey


def _same_channels(key: LayerKey) -> None:
    if key.cin != key.cout:
        raise ArchError(f"layer op {key.op!r} keeps its channels; got {key.id}")


# -- operators ---------------------------------------------------------------------------
@register_layer_builder("cell_stem")
def _cell_stem(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    """k×k conv + BN (+ activation unless ``act`` is ``none``)."""
    layers: list[nn.Module] = [
        nn.Conv2d(key.cin, key.cout, key.kernel, key.stride, key.kernel // 2, bias=False),
        nn.BatchNorm2d(key.cout)]
    if key.act != "none":
        layers.append(activation(key.act)())
    return nn.Sequential(*layers)


@register_layer_builder("relu_conv_bn")
def _relu_conv_bn(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    """ReLU → k×k conv → BN (NB201's ``nor_conv_kxk``; the 1×1 cell preprocessing)."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(key.cin, key.cout, key.kernel, key.stride, key.kernel // 2, bias=False),
        nn.BatchNorm2d(key.cout))


@register_layer_builder("avg_pool")
def _avg_pool(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    _same_channels(key)
    return nn.AvgPool2d(key.kernel, key.stride, key.kernel // 2, count_include_pad=False)


@register_layer_builder("max_pool")
def _max_pool(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    _same_channels(key)
    return nn.MaxPool2d(key.kernel, key.stride, key.kernel // 2)


def _dw_pw(cin: int, cout: int, kernel: int, stride: int, dilation: int) -> list[nn.Module]:
    pad = dilation * (kernel // 2)
    return [nn.ReLU(),
            nn.Conv2d(cin, cin, kernel, stride, pad, dilation=dilation, groups=cin, bias=False),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout)]


@register_layer_builder("sep_conv")
def _sep_conv(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    """(ReLU, depthwise k×k, pointwise, BN) twice; the first has the stride."""
    return nn.Sequential(*_dw_pw(key.cin, key.cin, key.kernel, key.stride, 1),
                         *_dw_pw(key.cin, key.cout, key.kernel, 1, 1))


@register_layer_builder("dil2_conv")
def _dil_conv(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    """ReLU, depthwise k×k with dilation 2, pointwise, BN."""
    return nn.Sequential(*_dw_pw(key.cin, key.cout, key.kernel, key.stride, 2))


@register_layer_builder("conv_1x7_7x1")
def _conv_1x7_7x1(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    """ReLU, 1×k conv, k×1 conv, BN (DARTS' ``conv_7x1_1x7``)."""
    k, s = key.kernel, key.stride
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(key.cin, key.cin, (1, k), (1, s), (0, k // 2), bias=False),
        nn.Conv2d(key.cin, key.cout, (k, 1), (s, 1), (k // 2, 0), bias=False),
        nn.BatchNorm2d(key.cout))


class FactorizedReduce(nn.Module):
    """ReLU, two stride-2 1×1 convs on the input and on it shifted by one pixel, concatenated,
    BN: halves the resolution without discarding every other pixel. Odd sizes are padded."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        if cout < 2:
            raise ArchError(f"factorized reduction needs at least 2 output channels, got {cout}")
        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(cin, cout // 2, 1, 2, bias=False)
        self.conv2 = nn.Conv2d(cin, cout - cout // 2, 1, 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv1(x), self.conv2(shifted)], dim=1))


@register_layer_builder("factorized_reduce")
def _factorized_reduce(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    if key.stride != 2:
        raise ArchError(f"factorized_reduce has stride 2; got {key.id}")
    return FactorizedReduce(key.cin, key.cout)


class ResNetBasicBlock(nn.Module):
    """NB201's reduction block: two ReLU-conv-BN 3×3 (the first strided) plus a shortcut of
    2×2 average pooling and a 1×1 conv."""

    def __init__(self, key: LayerKey) -> None:
        super().__init__()
        if key.stride != 2:
            raise ArchError(f"nb201_resblock has stride 2; got {key.id}")
        k = key.kernel
        self.conv_a = _relu_conv_bn(LayerKey("relu_conv_bn", key.cin, key.cout, key.h, key.w,
                                             kernel=k, stride=2))
        self.conv_b = _relu_conv_bn(LayerKey("relu_conv_bn", key.cout, key.cout, 1, 1,
                                             kernel=k))
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0),
                                        nn.Conv2d(key.cin, key.cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


@register_layer_builder("nb201_resblock")
def _nb201_resblock(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    return ResNetBasicBlock(key)


@register_layer_builder("nb201_head")
def _nb201_head(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    """BN, ReLU, global average pooling, linear (NB201's ``lastact`` + classifier)."""
    return nn.Sequential(nn.BatchNorm2d(key.cin), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(1), nn.Linear(key.cin, key.cout))


@register_layer_builder("cell_classifier")
def _cell_classifier(key: LayerKey, *, dropout: float = 0.0) -> nn.Module:
    """Global average pooling, dropout, linear."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout),
                         nn.Linear(key.cin, key.cout))


def _op(key: LayerKey | None, dropout: float = 0.0) -> nn.Module:
    return nn.Identity() if key is None else build_layer(key, dropout=dropout)


# -- NASNet ------------------------------------------------------------------------------
class NasNetCell(nn.Module):
    """One planned NASNet cell (:class:`mobile_nas.space.nasnet.CellPlan`)."""

    def __init__(self, plan) -> None:
        super().__init__()
        self.pre0 = build_layer(plan.pre0)
        self.pre1 = build_layer(plan.pre1)
        self.ops = nn.ModuleList(_op(k) for bp in plan.blocks for k in (bp.key1, bp.key2))
        self.inputs = [(bp.block.in1, bp.block.in2) for bp in plan.blocks]
        self.concat = list(plan.concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for b, (i1, i2) in enumerate(self.inputs):
            states.append(self.ops[2 * b](states[i1]) + self.ops[2 * b + 1](states[i2]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class NasNet(nn.Module):
    """Stem, stacked normal/reduction cells (each fed by the previous two), classifier."""

    def __init__(self, plan, dropout: float = 0.0) -> None:
        super().__init__()
        self.stem = nn.Sequential(*(build_layer(k) for k in plan.stem))
        self.cells = nn.ModuleList(NasNetCell(c) for c in plan.cells)
        self.classifier = build_layer(plan.classifier, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(s1)


@register_builder("nasnet")
def _build_nasnet(space, arch: Architecture) -> nn.Module:
    model = NasNet(space.plan(arch), dropout=space.dropout)
    init_weights(model)
    return model


# -- NAS-Bench-201 -----------------------------------------------------------------------
class NB201Cell(nn.Module):
    """NB201's ``InferCell``: node j = sum of op(node i) over live edges i → j; 'none' edges
    are dropped (they contribute zeros), a node with no live edge is zero."""

    def __init__(self, plan) -> None:
        super().__init__()
        live = [e for e in plan.edges if e.op != "none"]
        self.ops = nn.ModuleList(_op(e.key) for e in live)
        self.wiring = [(e.to, e.src) for e in live]
        self.nodes = 1 + max(e.to for e in plan.edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, self.nodes):
            terms = [op(nodes[src]) for op, (to, src) in zip(self.ops, self.wiring, strict=True)
                     if to == j]
            nodes.append(sum(terms[1:], terms[0]) if terms else x * 0.0)
        return nodes[-1]


class NB201Network(nn.Module):
    """NB201's ``TinyNetwork``: stem, 3 stages of cells with residual reductions, head."""

    def __init__(self, plan) -> None:
        super().__init__()
        self.stem = build_layer(plan.stem)
        body: list[nn.Module] = []
        for s, cells in enumerate(plan.stages):
            if s:
                body.append(build_layer(plan.reductions[s - 1]))
            body.extend(NB201Cell(c) for c in cells)
        self.cells = nn.Sequential(*body)
        self.head = build_layer(plan.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.cells(self.stem(x)))


@register_builder("nb201")
def _build_nb201(space, arch: Architecture) -> nn.Module:
    model = NB201Network(space.plan(arch))
    init_weights(model)
    return model
