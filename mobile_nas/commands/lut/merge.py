"""``mobile-nas lut merge``: several builds of one table as the passes of one (median)."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, print_json
from mobile_nas.cost.latency import LatencyTable
from mobile_nas.errors import MobileNasError


def register(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "merge", help="merge several builds of a table (passes) into one: the median predicts",
        description="Write one table whose predictions are the median of several builds' "
                    "(each build's entries and calibration kept: its passes). Builds of one "
                    "space on one device with one protocol, each by 'lut build' in its own "
                    "run ('lut build --passes N' builds and merges N in one go). On a 2-core "
                    "VM the per-network errors of separate builds were largely their own "
                    "and one build in six, made on a disturbed machine, was off by itself: "
                    "benchmarks/results/latency_build_ensemble_intel*.md. Example: for i in "
                    "1 2 3; do mobile-nas lut build --space fmnist28 --seed $i --out "
                    "p$i.json; done; mobile-nas lut merge p1.json p2.json p3.json --out "
                    "fmnist28_table.json")
    p.add_argument("tables", nargs="+", metavar="T.json",
                   help="two or more tables (a table with passes adds all of them)")
    p.add_argument("--out", "-o", required=True, metavar="OUT.json",
                   help="the merged table (written atomically; may be one of the inputs)")
    add_json_arg(p)
    p.set_defaults(handler=_merge)


def _merge(args: argparse.Namespace) -> int:
    if len(args.tables) < 2:
        raise MobileNasError("lut merge needs two or more tables")
    first, *more = (LatencyTable.load(t) for t in args.tables)
    merged = first.with_passes(more)
    merged.save(args.out)
    checks = [b.calibration.held_out.summary() for b in (first, *merged.passes)
              if b.calibration is not None and b.calibration.held_out is not None]
    if args.json:
        print_json({"out": args.out, "space": merged.space, "passes": 1 + len(merged.passes),
                    "tables": args.tables})
        return 0
    print(f"wrote {args.out}: {1 + len(merged.passes)} builds of {merged.space} merged "
          f"(each network: the median of their predicted anchor fractions)")
    for i, c in enumerate(checks, 1):
        print(f"  build {i}: {c}")
    return 0
