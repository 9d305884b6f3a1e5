"""The weight-sharing supernet of a mobile space (single-path one-shot).

One network holds every choice of a :class:`~mobile_nas.space.mobile.MobileSpace`: each layer
slot of each stage owns a ``ds`` block and one ``mb`` block at the largest expansion, width
and kernel (every ``mb<e>`` shares it); a sampled architecture runs the first ``channels``
channels and the centre ``kernel × kernel`` of the depthwise weights (once-for-all's elastic
width and kernel), activations switch freely and SE uses the first channels of the largest
squeeze. Layers past a stage's chosen depth are skipped. Batch-norm statistics depend on the
path, so scoring an architecture first recalibrates them on a few training batches
(:func:`recalibrate_batchnorm`). A path computes what
:func:`mobile_nas.models.build_model` builds for the same architecture, layer for layer.

:func:`build_supernet` makes the supernet of any space family with a registered one: this
module's for ``mobile``, :mod:`mobile_nas.models.cell_supernet`'s for ``nasnet`` and ``nb201``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops.misc import SqueezeExcitation

from mobile_nas.errors import ArchError
from mobile_nas.models import cell_supernet  # noqa: F401  (registers the cell supernets)
from mobile_nas.models.blocks import MobileBlock, make_divisible
from mobile_nas.models.build import build_model
from mobile_nas.models.supernet_registry import SUPERNETS, register_supernet
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.mobile import MobileSpace, StageConfig

_ACTS = {"relu": F.relu, "relu6": F.relu6, "hswish": F.hardswish}


class SlicedBatchNorm(nn.BatchNorm2d):
    """BatchNorm over the first ``C`` channels of its input (C ≤ ``num_features``).

    During recalibration (``calibrating`` True, training mode) the running statistics become
    the plain average over the calibration batches.
    """

    # always kept, with a momentum (the constructor's defaults; calibrating averages instead)
    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor
    momentum: float

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features)
        self.calibrating = False
        self.calib_batches = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        momentum = self.momentum
        if self.training and self.calibrating:
            self.calib_batches += 1
            momentum = 1.0 / self.calib_batches
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c],
                            self.bias[:c], self.training, momentum, self.eps)


class SuperConv(nn.Module):
    """A conv at the largest size; ``forward`` slices channels and crops the kernel."""

    def __init__(self, cin: int, cout: int, kernel: int, *, depthwise: bool = False,
                 bias: bool = False) -> None:
        super().__init__()
        self.depthwise = depthwise
        self.weight = nn.Parameter(torch.empty(cout, 1 if depthwise else cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        nn.init.kaiming_normal_(self.weight, mode="fan_out")

    def forward(self, x: torch.Tensor, cout: int, *, kernel: int | None = None,
                stride: int = 1) -> torch.Tensor:
        cin = x.shape[1]
        kmax = self.weight.shape[-1]
        k = kernel or kmax
        start = (kmax - k) // 2
        if self.depthwise:
            w = self.weight[:cin, :, start:start + k, start:start + k]
            groups = cin
        else:
            w = self.weight[:cout, :cin, start:start + k, start:start + k]
            groups = 1
        b = self.bias[:w.shape[0]] if self.bias is not None else None
        return F.conv2d(x, w, b, stride, k // 2, 1, groups)


class SuperBlock(nn.Module):
    """``ds``, or every ``mb<e>`` up to ``op``'s expansion, of a layer slot at its largest
    sizes (a smaller expansion uses the first ``cin·e`` hidden channels)."""

    def __init__(self, op: str, cin_max: int, cout_max: int, kernel_max: int, se: bool) -> None:
        super().__init__()
        self.expansion = 1 if op == "ds" else int(op[2:])
        hidden_max = cin_max * self.expansion
        if self.expansion != 1:
            self.expand = SuperConv(cin_max, hidden_max, 1)
            self.expand_bn = SlicedBatchNorm(hidden_max)
        self.dw = SuperConv(hidden_max, hidden_max, kernel_max, depthwise=True)
        self.dw_bn = SlicedBatchNorm(hidden_max)
        if se:
            squeeze_max = make_divisible(hidden_max * 0.25)
            self.se_fc1 = SuperConv(hidden_max, squeeze_max, 1, bias=True)
            self.se_fc2 = SuperConv(squeeze_max, hidden_max, 1, bias=True)
        self.project = SuperConv(hidden_max, cout_max, 1)
        self.project_bn = SlicedBatchNorm(cout_max)

    def forward(self, x: torch.Tensor, c: StageConfig, stride: int) -> torch.Tensor:
        act = _ACTS[c.act]
        cin = x.shape[1]
        hidden = cin * _op_size(c.op)
        out = x
        if self.expansion != 1:
            out = act(self.expand_bn(self.expand(out, hidden)))
        out = act(self.dw_bn(self.dw(out, hidden, kernel=c.kernel, stride=stride)))
        if c.se:
            s = F.adaptive_avg_pool2d(out, 1)
            s = F.relu(self.se_fc1(s, make_divisible(hidden * c.se)))
            out = out * F.hardsigmoid(self.se_fc2(s, hidden))
        out = self.project_bn(self.project(out, c.channels))
        return x + out if stride == 1 and cin == c.channels else out


class MobileSupernet(nn.Module):
    """Supernet of a mobile space; ``forward(x, arch)`` runs the path of ``arch``.

    :meth:`set_arch` fixes a path so that ``forward(x)`` works like a plain model;
    :meth:`extract` copies a path's weights into its stand-alone ``build_model`` network.
    """

    def __init__(self, space: MobileSpace) -> None:
        super().__init__()
        if not isinstance(space, MobileSpace):
            raise ArchError(f"the supernet needs a mobile-family space, not {space.name!r}")
        self.space = space
        cin = space.input_shape[0]
        self.stem = SuperConv(cin, space.stem_channels, 3)
        self.stem_bn = SlicedBatchNorm(space.stem_channels)
        self.stages = nn.ModuleList()
        prev = space.stem_channels
        for st in space.stages:
            cmax = max(st.channels)
            slots = nn.ModuleList()
            for j in range(max(st.layers)):
                slot_cin = prev if j == 0 else cmax
                mbs = [op for op in st.ops if op != "ds"]
                blocks = {}
                if "ds" in st.ops:
                    blocks["ds"] = SuperBlock("ds", slot_cin, cmax, max(st.kernels),
                                              any(st.se))
                if mbs:  # every MBConv expansion slices one block of the largest expansion
                    blocks["mb"] = SuperBlock(max(mbs, key=_op_size), slot_cin, cmax,
                                              max(st.kernels), any(st.se))
                slots.append(nn.ModuleDict(blocks))
            self.stages.append(slots)
            prev = cmax
        self.head = SuperConv(prev, space.head_channels, 1)
        self.head_bn = SlicedBatchNorm(space.head_channels)
        self.dropout = nn.Dropout(space.dropout)
        self.classifier = nn.Linear(space.head_channels, space.num_classes)
        nn.init.normal_(self.classifier.weight, 0, 0.01)
        nn.init.zeros_(self.classifier.bias)
        self._arch: Architecture | None = None

    def set_arch(self, arch: Architecture) -> None:
        self.space.validate(arch)
        self._arch = arch

    def forward(self, x: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        arch = arch or self._arch
        if arch is None:
            raise ArchError("no architecture: pass one or call set_arch first")
        configs = self.space.stage_configs(arch)
        out = _ACTS[configs[0].act](self.stem_bn(
            self.stem(x, self.space.stem_channels, stride=self.space.stem_stride)))
        for c, st, slots in zip(configs, self.space.stages, self.stages, strict=True):
            for j in range(c.layers):
                out = _slot(slots, j, c.op)(out, c, st.stride if j == 0 else 1)
        out = _ACTS[configs[-1].act](self.head_bn(self.head(out, self.space.head_channels)))
        out = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return self.classifier(self.dropout(out))

    @torch.no_grad()
    def extract(self, arch: Architecture) -> nn.Module:
        """The stand-alone network of ``arch`` (``build_model``) carrying this supernet's
        weights and batch-norm statistics for that path, in eval mode."""
        self.space.validate(arch)
        model = build_model(arch)
        configs = self.space.stage_configs(arch)
        # torchvision's Conv2dNormActivation (untyped), MobileBlocks and the Classifier
        children: list[Any] = list(model.children())
        stem, *blocks, head, classifier = children
        _copy_conv(stem[0], self.stem)
        _copy_bn(stem[1], self.stem_bn)
        layers = iter(blocks)
        for c, slots in zip(configs, self.stages, strict=True):
            for j in range(c.layers):
                _copy_block(next(layers), _slot(slots, j, c.op))
        _copy_conv(head[0], self.head)
        _copy_bn(head[1], self.head_bn)
        classifier[-1].load_state_dict(self.classifier.state_dict())
        return model.eval()

    def largest_arch(self) -> Architecture:
        """Widest, deepest path: largest op, kernel, depth, width and SE (sandwich rule)."""
        return self.space.largest_arch()

    def describe(self) -> dict[str, Any]:
        return {"space": self.space.name,
                "params": sum(p.numel() for p in self.parameters())}


def _slot(slots: nn.Module, j: int, op: str) -> SuperBlock:
    """The block of layer ``j`` for ``op`` in a stage's slots (ModuleList of ModuleDicts)."""
    return slots[j]["ds" if op == "ds" else "mb"]  # type: ignore[index]  # an nn.ModuleList


def _op_size(op: str) -> int:
    return 1 if op == "ds" else int(op[2:])


def _copy_conv(dst: nn.Conv2d, src: SuperConv) -> None:
    """The slice of ``src`` a path uses (first channels, centre of the kernel) into ``dst``."""
    cout, cin, k, _ = dst.weight.shape
    start = (src.weight.shape[-1] - k) // 2
    dst.weight.copy_(src.weight[:cout, :cin, start:start + k, start:start + k])
    if dst.bias is not None:
        if src.bias is None:
            raise ArchError("the stand-alone conv has a bias, the supernet conv has none")
        dst.bias.copy_(src.bias[:cout])


def _copy_bn(dst: nn.BatchNorm2d, src: SlicedBatchNorm) -> None:
    c = dst.num_features
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, name).copy_(getattr(src, name)[:c])
    if dst.num_batches_tracked is None:
        raise ArchError("the stand-alone batch norm keeps no running statistics")
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


def _copy_block(dst: MobileBlock, src: SuperBlock) -> None:
    """``dst`` is [expand] → depthwise → [SE] → project, each conv(-BN) taken from ``src``."""
    parts: list[Any] = list(dst.block)  # torchvision's (untyped) Conv2dNormActivation, SE
    project = parts.pop()
    se = parts.pop() if isinstance(parts[-1], SqueezeExcitation) else None
    dw = parts.pop()
    expand = parts.pop() if parts else None
    if (expand is None) != (src.expansion == 1):
        raise ArchError("the stand-alone block and the supernet block differ in expansion")
    if expand is not None:
        _copy_conv(expand[0], src.expand)
        _copy_bn(expand[1], src.expand_bn)
    _copy_conv(dw[0], src.dw)
    _copy_bn(dw[1], src.dw_bn)
    if se is not None:
        _copy_conv(se.fc1, src.se_fc1)
        _copy_conv(se.fc2, src.se_fc2)
    _copy_conv(project[0], src.project)
    _copy_bn(project[1], src.project_bn)


register_supernet("mobile")(MobileSupernet)


def supernet_families() -> tuple[str, ...]:
    return tuple(SUPERNETS.names())


def build_supernet(space: SearchSpace) -> nn.Module:
    """A freshly initialised weight-sharing supernet of ``space`` (any registered family).

    The result has ``space``, ``forward(x, arch)``, ``set_arch(arch)``, ``extract(arch)``
    (the path as a stand-alone ``build_model`` network) and ``describe()``.
    """
    families = supernet_families()
    if space.family not in SUPERNETS:
        raise ArchError(f"no weight-sharing supernet for space {space.name!r} (family "
                        f"{space.family!r}); supernets exist for: {', '.join(families)}")
    return SUPERNETS.get(space.family)(space)


def supernet_space(supernet: nn.Module) -> SearchSpace:
    """The search space of a supernet (:func:`build_supernet`)."""
    space = getattr(supernet, "space", None)
    if not isinstance(space, SearchSpace):
        raise ArchError(f"a {type(supernet).__name__} has no search space: not a supernet")
    return space


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: list[torch.Tensor], **forward_kw) -> None:
    """Resets every batch norm and re-estimates its statistics as the plain average over
    ``batches`` (run in training mode), then leaves ``model`` in eval mode.

    :class:`SlicedBatchNorm` counts its batches itself; other batch norms get
    ``momentum=None`` (PyTorch's cumulative average) for the duration.
    """
    sliced = [m for m in model.modules() if isinstance(m, SlicedBatchNorm)]
    plain = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and not isinstance(m, SlicedBatchNorm) and m.track_running_stats]
    momenta = [bn.momentum for bn in plain]
    for sbn in sliced:
        sbn.reset_running_stats()
        sbn.calibrating, sbn.calib_batches = True, 0
    for bn in plain:
        bn.reset_running_stats()
        bn.momentum = None
    model.train()
    try:
        for x in batches:
            model(x, **forward_kw)
    finally:
        for sbn in sliced:
            sbn.calibrating = False
        for bn, momentum in zip(plain, momenta, strict=True):
            bn.momentum = momentum
        model.eval()
