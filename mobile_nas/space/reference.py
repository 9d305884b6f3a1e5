"""Reference architectures: known networks expressed in our spaces, with recorded costs.

``params`` and ``macs`` are the figures of the torchvision model of the same name (MACs as
counted by :func:`mobile_nas.cost.flops.count_macs`); tests rebuild both networks and check.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobile_nas.errors import SpaceError
from mobile_nas.registry import Registry


@dataclass(frozen=True)
class ReferenceArch:
    name: str
    space: str
    arch: str
    params: int
    macs: int
    source: str


REFERENCE_ARCHS: Registry[ReferenceArch] = Registry("reference architecture", SpaceError)
#: Hand-designed baselines a benchmark compares against (scaled to its latency target), usable
#: by name wherever ARCH is taken; unlike :data:`REFERENCE_ARCHS` they are not a space's
#: references: latency tables neither calibrate on nor check them, the demo does not show them.
BASELINE_ARCHS: Registry[ReferenceArch] = Registry("baseline architecture", SpaceError)


def _register(ref: ReferenceArch) -> None:
    REFERENCE_ARCHS.register(ref.name, ref)


_register(ReferenceArch(
    name="mobilenet_v2",
    space="mobile224",
    arch="ds_k3_n1_c16_relu6|mb6_k3_n2_c24_relu6|mb6_k3_n3_c32_relu6|mb6_k3_n4_c64_relu6"
         "|mb6_k3_n3_c96_relu6|mb6_k3_n3_c160_relu6|mb6_k3_n1_c320_relu6",
    params=3_504_872,
    macs=300_774_272,
    source="torchvision.models.mobilenet_v2 (Sandler et al. 2018)",
))
_register(ReferenceArch(
    name="mnasnet1_0",
    space="mobile224",
    arch="ds_k3_n1_c16_relu|mb3_k3_n3_c24_relu|mb3_k5_n3_c40_relu|mb6_k5_n3_c80_relu"
         "|mb6_k3_n2_c96_relu|mb6_k5_n4_c192_relu|mb6_k3_n1_c320_relu",
    params=4_383_312,
    macs=314_415_872,
    source="torchvision.models.mnasnet1_0 (Tan et al. 2019, MnasNet-B1 without SE)",
))
# Hand-designed fmnist28 networks: the MobileNetV2 and MnasNet patterns (a ds first stage, then
# MBConv 6 / 3x3 everywhere, or MBConv 3 and 6 with 3x3 and 5x5 kernels; ReLU, no SE) with the
# depth and width an engineer would pick for the demo's 0.4 ms target: the scaling whose
# shipped-table prediction is closest to 0.4 ms (benchmarks/e2e_fmnist.py's rule). They are
# the baselines the search has to beat at equal latency.
_register(ReferenceArch(
    name="fmnist28_mobilenet_v2",
    space="fmnist28",
    arch="ds_k3_n1_c16_relu|mb6_k3_n3_c40_relu|mb6_k3_n1_c48_relu|mb6_k3_n1_c96_relu",
    params=149_546,
    macs=5_513_840,
    source="MobileNetV2 pattern scaled to 0.4 ms on the shipped fmnist28 table",
))
_register(ReferenceArch(
    name="fmnist28_mnasnet",
    space="fmnist28",
    arch="ds_k3_n1_c16_relu|mb3_k3_n1_c40_relu|mb3_k5_n2_c40_relu|mb6_k5_n3_c64_relu",
    params=202_698,
    macs=4_648_800,
    source="MnasNet-B1 pattern scaled to 0.4 ms on the shipped fmnist28 table",
))
# NAS-Bench-201's hand-designed cell, the benchmark paper's "ResNet" row (Dong & Yang 2020,
# index 11472): two 3x3 convolutions in sequence and a skip connection around them.
_register(ReferenceArch(
    name="nb201_resnet",
    space="nb201",
    arch="|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
    params=559_386,
    macs=78_561_920,
    source="NAS-Bench-201 ResNet cell (Dong & Yang 2020), in this space's 16-32-64 skeleton",
))
# End-to-end baselines (benchmarks/e2e_fmnist.py, protocol benchmarks/protocols/e2e_fmnist.json):
# a hand-designed pattern scaled to the demo's target (as fast as fmnist28_mnasnet on the
# fmnist28 table of 2026-12-07) the way MobileNet and EfficientNet scale: a uniform width
# multiplier and a uniform depth multiplier rounded to the space's choices, the largest
# prediction at or under the target (e2e_fmnist.scale_to_target). fmnist28_mobilenet_v2 itself
# predicts 1.12x the target on that table; depth 0.75 predicts 0.89x.
BASELINE_ARCHS.register("fmnist28_mobilenet_v2_scaled", ReferenceArch(
    name="fmnist28_mobilenet_v2_scaled",
    space="fmnist28",
    arch="ds_k3_n1_c16_relu|mb6_k3_n2_c40_relu|mb6_k3_n1_c48_relu|mb6_k3_n1_c96_relu",
    params=127_146,
    macs=4_467_200,
    source="MobileNetV2 pattern (fmnist28_mobilenet_v2) at width 1.0, depth 0.75: 0.89x "
           "fmnist28_mnasnet predicted on the fmnist28 table of 2026-12-07",
))
# MobileNetV3-Small (Howard et al. 2019) in fmnist28's four stages: a depthwise-separable
# 3x3 first stage with SE and ReLU, MBConv 3x3 ReLU without SE at 24 channels, then MBConv 6
# 5x5 with SE and hard-swish (its 40/48-channel blocks as stage 3, its 96-channel ones as stage
# 4), 1-2-3-3 layers at full depth; width 1.0, depth 0.34 (one layer per stage) is the largest
# scaling within the target (0.79x predicted; depth 0.5 is past it).
BASELINE_ARCHS.register("fmnist28_mobilenet_v3_small", ReferenceArch(
    name="fmnist28_mobilenet_v3_small",
    space="fmnist28",
    arch="ds_k3_n1_c16_relu_se|mb3_k3_n1_c24_relu|mb6_k5_n1_c48_hswish_se"
         "|mb6_k5_n1_c96_hswish_se",
    params=149_362,
    macs=2_787_840,
    source="MobileNetV3-Small pattern (SE + hard-swish) at width 1.0, depth 0.34: 0.79x "
           "fmnist28_mnasnet predicted on the fmnist28 table of 2026-12-07",
))
