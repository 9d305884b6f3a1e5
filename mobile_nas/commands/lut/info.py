"""``mobile-nas lut info``: what a table holds."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, print_json
from mobile_nas.cost.latency import LatencyTable
from mobile_nas.cost.latency.info import info_lines, table_info


def register(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "info", help="what a table holds: coverage, machine, protocol, calibration",
        description="Print a table's coverage of its space, the machine and protocol that "
                    "timed it, what it predicts, its calibration and the entries searches "
                    "added on demand (search --profile-missing). Example: mobile-nas lut "
                    "info --table latency_tables/mobile224.json")
    p.add_argument("--table", "-t", required=True, metavar="T.json")
    add_json_arg(p)
    p.set_defaults(handler=_info)


def _info(args: argparse.Namespace) -> int:
    table = LatencyTable.load(args.table)
    info = table_info(table, args.table)
    if args.json:
        print_json(info)
    else:
        print("\n".join(info_lines(table, info)))
    return 0
