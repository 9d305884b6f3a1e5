"""``mobile-nas lut calibrate``: refit a table's calibration on measured networks."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, positive_int
from mobile_nas.commands.lut._shared import print_build_result
from mobile_nas.cost.latency.build import load_space_archs, recalibrate_lut
from mobile_nas.cost.latency.calibrate import (
    DEFAULT_FIT_NETWORKS,
    DEFAULT_HELD_OUT,
    default_fit_networks,
)
from mobile_nas.cost.latency.table import LatencyTable
from mobile_nas.space import get_space


def register(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "calibrate", help="refit a table's calibration on measured networks",
        description="Measure networks the table covers end to end (wall-clock median, with "
                    "the table's threads and provider), fit the calibration on N of them, "
                    "check it on --held-out others, and store both in the table.")
    p.add_argument("--table", "-t", required=True, metavar="T.json")
    p.add_argument("--space", "-s", metavar="S", help="search space (default: the table's)")
    p.add_argument("--n", type=positive_int, default=None,
                   help=f"networks to fit on (default: three per weight of the space's "
                        f"network model, at least {DEFAULT_FIT_NETWORKS}; at least 3; 12 or "
                        f"more fit the per-op network model)")
    p.add_argument("--held-out", type=positive_int, default=DEFAULT_HELD_OUT,
                   help=f"networks to check on (default {DEFAULT_HELD_OUT}, at least 2)")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH",
                   help="calibrate on this architecture first (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    add_json_arg(p)
    p.set_defaults(handler=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    space = get_space(args.space or LatencyTable.load(args.table).space)
    result = recalibrate_lut(args.table, space=space,
                             include=load_space_archs(args.arch, space.name),
                             n_fit=default_fit_networks(space) if args.n is None else args.n,
                             n_held_out=args.held_out, seed=args.seed, progress=not args.json)
    print_build_result(result, args.json)
    return 0
