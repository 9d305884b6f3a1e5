"""``mobile-nas space show|sample``: inspect a search space and draw architectures."""

from __future__ import annotations

import argparse

import numpy as np

from mobile_nas.commands._common import add_json_arg, add_space_arg, positive_int, print_json
from mobile_nas.errors import SpaceError
from mobile_nas.space import REFERENCE_ARCHS, get_space, list_spaces


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("space", help="inspect a search space and sample architectures",
                       description="Inspect a search space and sample architectures from it.")
    ssub = p.add_subparsers(dest="space_command", metavar="ACTION", required=True)

    show = ssub.add_parser("show", help="decisions, size and layer count of a space",
                           description="Print a space's decisions and size. Example: "
                                       "mobile-nas space show --space fmnist28")
    add_space_arg(show, required=False)
    show.add_argument("--list", action="store_true", help="list the registered spaces")
    add_json_arg(show)
    show.set_defaults(handler=_show)

    sample = ssub.add_parser("sample", help="draw random architectures, one string a line",
                             description="Draw N architectures uniformly at random. Example: "
                                         "mobile-nas space sample --space fmnist28 --n 3 "
                                         "--seed 0")
    add_space_arg(sample)
    sample.add_argument("--n", type=positive_int, default=1, help="how many (default 1)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_json_arg(sample)
    sample.set_defaults(handler=_sample)


def _show(args: argparse.Namespace) -> int:
    if args.list or args.space is None:
        if args.space is None and not args.list:
            raise SpaceError("give --space S, or --list to see the spaces")
        names = list_spaces()
        if args.json:
            print_json(names)
        else:
            for n in names:
                print(f"{n:12s} {get_space(n).description}")
        return 0
    space = get_space(args.space)
    info = space.describe()
    info["reference_archs"] = [r for r in REFERENCE_ARCHS
                               if REFERENCE_ARCHS.get(r).space == space.name]
    if args.json:
        print_json(info)
        return 0
    print(f"space {space.name}: {space.description}")
    print(f"  input {tuple(space.input_shape)}, {space.num_classes} classes, family "
          f"{space.family}")
    print(f"  {info['size']:.3e} architectures (10^{info['log10_size']}), "
          f"{info['num_layer_keys']} distinct layers to profile")
    width = max(len(d.name) for d in space.decisions)
    for d in space.decisions:
        print(f"  {d.name:<{width}}  {', '.join(str(c) for c in d.choices)}")
    if info["reference_archs"]:
        print(f"  reference architectures: {', '.join(info['reference_archs'])}")
    return 0


def _sample(args: argparse.Namespace) -> int:

    space = get_space(args.space)
    rng = np.random.default_rng(args.seed)
    archs = [space.sample(rng).to_string() for _ in range(args.n)]
    if args.json:
        print_json(archs)
    else:
        print("\n".join(archs))
    return 0
