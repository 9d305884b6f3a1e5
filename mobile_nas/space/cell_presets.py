"""The built-in cell spaces: ``nasnet`` (Fashion-MNIST-sized proxy) and ``nb201``."""

from __future__ import annotations

from mobile_nas.space.nasnet import NasNetSpace
from mobile_nas.space.nb201 import NB201Space

NASNET = NasNetSpace(
    name="nasnet",
    description="NASNet normal + reduction cells (5 blocks, 8 ops) on a small 1x28x28 "
                "Fashion-MNIST proxy (N=1 cell per stack, F=8 filters); resize with "
                "'nasnet@n<N>-f<F>-r<size>' or 'mobile-nas transfer'.",
    input_shape=(1, 28, 28),
    num_classes=10,
    cells=1,
    filters=8,
    blocks=5,
    dropout=0.0,
)

NB201 = NB201Space(
    name="nb201",
    description="NAS-Bench-201 cell (4 nodes, 6 edges, 5 ops; 15,625 cells) in NB201's "
                "3x32x32 CIFAR skeleton (N=5, C=16) and arch-string format.",
    input_shape=(3, 32, 32),
    num_classes=10,
    cells=5,
    filters=16,
)

CELL_SPACES = (NASNET, NB201)
