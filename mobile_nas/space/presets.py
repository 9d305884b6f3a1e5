"""The built-in spaces: ``mobile224`` (ImageNet-style) and ``fmnist28`` (Fashion-MNIST)."""

from __future__ import annotations

from mobile_nas.space.cell_presets import CELL_SPACES
from mobile_nas.space.mobile import MobileSpace, StageSpec
from mobile_nas.space.registry import SPACES, register_space

_OPS = ("ds", "mb3", "mb6")
_KERNELS = (3, 5, 7)
_SE = (0.0, 0.25)


def _stage(stride: int, layers: tuple[int, ...], channels: tuple[int, ...],
           acts: tuple[str, ...]) -> StageSpec:
    return StageSpec(stride=stride, ops=_OPS, kernels=_KERNELS, layers=layers,
                     channels=channels, acts=acts, se=_SE)


_ACTS224 = ("relu", "relu6", "hswish")
MOBILE224 = MobileSpace(
    name="mobile224",
    description="MnasNet-style space for 3x224x224 ImageNet-like inputs; contains "
                "torchvision's mobilenet_v2 and mnasnet1_0.",
    input_shape=(3, 224, 224),
    num_classes=1000,
    stem_channels=32,
    stem_stride=2,
    stages=(
        _stage(1, (1, 2), (8, 16, 24), _ACTS224),
        _stage(2, (1, 2, 3, 4), (16, 24, 32), _ACTS224),
        _stage(2, (1, 2, 3, 4), (24, 32, 40, 48), _ACTS224),
        _stage(2, (1, 2, 3, 4), (48, 64, 80, 96), _ACTS224),
        _stage(1, (1, 2, 3, 4), (80, 96, 112, 128), _ACTS224),
        _stage(2, (1, 2, 3, 4), (160, 192, 224), _ACTS224),
        _stage(1, (1, 2), (256, 320, 384), _ACTS224),
    ),
    head_channels=1280,
    dropout=0.2,
)

_ACTS28 = ("relu", "hswish")
FMNIST28 = MobileSpace(
    name="fmnist28",
    description="The same decisions on a small skeleton for 1x28x28 Fashion-MNIST "
                "(stem at 28x28, stages at 14, 7, 7 and 4 pixels).",
    input_shape=(1, 28, 28),
    num_classes=10,
    stem_channels=16,
    stem_stride=1,
    stages=(
        _stage(2, (1, 2), (16, 24), _ACTS28),
        _stage(2, (1, 2, 3), (24, 32, 40), _ACTS28),
        _stage(1, (1, 2, 3), (40, 48, 64), _ACTS28),
        _stage(2, (1, 2, 3), (64, 80, 96), _ACTS28),
    ),
    head_channels=256,
    dropout=0.1,
)

# With the cell spaces (NASNet cells, NAS-Bench-201; resized by mobile_nas.space.scaled).
for _space in (MOBILE224, FMNIST28, *CELL_SPACES):
    if _space.name not in SPACES:
        register_space(_space)
