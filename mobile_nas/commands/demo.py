"""``mobile-nas demo``: the whole path on Fashion-MNIST, minutes on a laptop CPU."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole path on Fashion-MNIST (minutes on a CPU)",
                       description="Show the fmnist28 space, sample architectures and cost "
                                   "them, and cost the mobile224 reference architectures.")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    from mobile_nas.cost.model_costs import model_costs
    from mobile_nas.space import REFERENCE_ARCHS, get_space, load_arch

    space = get_space("fmnist28")
    print(f"== space {space.name}: {space.size():.3e} architectures, "
          f"{len(space.enumerate_layers())} distinct layers")
    rng = np.random.default_rng(0)
    for _ in range(5):
        arch = space.sample(rng)
        c = model_costs(arch)
        print(f"  {arch}  macs={c.macs / 1e6:.2f}M params={c.params / 1e3:.1f}k")
    print("== reference architectures (mobile224)")
    for name in REFERENCE_ARCHS:
        c = model_costs(load_arch(name, None))
        print(f"  {name:14s} macs={c.macs / 1e6:.1f}M params={c.params / 1e6:.3f}M")
    return 0
