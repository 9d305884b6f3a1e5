"""``mobile-nas report RUN_DIR``: plots and a self-contained report.html of a search run."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, print_json
from mobile_nas.report.build import build_report


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="plots and a self-contained HTML report of a search run",
        description="Read RUN_DIR (best.json, pareto.json, trials.csv from 'mobile-nas "
                    "search') and write pareto.png (targets drawn), reward.png (reward and "
                    "best so far), arch.png (the chosen architecture stage by stage), "
                    "latency.png (per-layer latency from the table) and report.html (images "
                    "inlined). Example: mobile-nas report runs/rl",
    )
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", help="folder for the files (default RUN_DIR)")
    p.add_argument("--table", help="latency table for the breakdown (default: the run's, "
                                   "else the shipped one)")
    add_json_arg(p)
    p.set_defaults(handler=_report)


def _report(args: argparse.Namespace) -> int:
    files = build_report(args.run_dir, out_dir=args.out, table=args.table)
    record = {"html": str(files.html), "images": {k: str(v) for k, v in files.images.items()},
              "notes": list(files.notes)}
    if args.json:
        print_json(record)
        return 0
    print(f"report  {files.html}")
    for name, path in files.images.items():
        print(f"{name:<8}{path}")
    for note in files.notes:
        print(f"note    {note}")
    return 0
