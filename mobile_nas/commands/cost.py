"""``mobile-nas cost ARCH``: MACs, parameters and latency (predicted by the space's shipped
table or ``--table``, and/or measured) of an architecture."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobile_nas.commands._common import add_json_arg, human, positive_int, print_json
from mobile_nas.cost.latency.requirements import TableRequest
from mobile_nas.cost.latency.settings import PRECISIONS
from mobile_nas.cost.summary import summarize_costs
from mobile_nas.space import canonical_space_name, load_arch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cost", help="MACs, parameters and latency of one architecture",
        description="Cost one architecture. ARCH is an arch string, a reference name "
                    "(mobilenet_v2, mnasnet1_0) or a JSON file with an \"arch\" key. MACs count "
                    "one fused multiply-add once (fvcore's convention) over convolutions and "
                    "linear layers. Example: mobile-nas cost mnasnet1_0 --space mobile224 --json",
    )
    p.add_argument("arch", metavar="ARCH", help="arch string, reference name or JSON file")
    p.add_argument("--space", "-s", metavar="S",
                   help="search space (optional for reference names and JSON files)")
    table = p.add_mutually_exclusive_group()
    table.add_argument("--table", "-t", metavar="T.json",
                       help="latency table (default: the one shipped for the space, as "
                            "'search' uses): adds latency_ms, the calibrated prediction of "
                            "the statistic named by latency_statistic (the wall-clock median, "
                            "as 'bench' reports it, for tables built by this release), and "
                            "latency_table")
    table.add_argument("--no-table", action="store_true",
                       help="no predicted latency (MACs and params; with --measure, the "
                            "measurement alone)")
    p.add_argument("--measure", action="store_true",
                   help="export to ONNX and time it with onnxruntime: adds measured_ms, the "
                        "same statistic as latency_ms (wall-clock median without --table) "
                        "over 100 runs, with the table's (or the requested) threads, "
                        "provider and precision (int8: the INT8 QDQ export, quantized as "
                        "'export --int8' quantizes)")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="intra-op threads the latency is for: a --table built for others is "
                        "refused (default: the table's, else 1)")
    p.add_argument("--provider", metavar="P",
                   help="onnxruntime execution provider the latency is for: a --table built "
                        "for another is refused (default: the table's, else CPU)")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="precision the latency is for: a --table built for another is "
                        "refused (default: the table's, else fp32)")
    add_json_arg(p)
    p.set_defaults(handler=_cost)


def _cost(args: argparse.Namespace) -> int:
    arch = load_arch(args.arch, canonical_space_name(args.space))
    request = TableRequest(precision=args.precision, threads=args.threads,
                           provider=args.provider)
    summary = summarize_costs(arch, table=args.table, measure=args.measure, request=request,
                              shipped_table=not args.no_table)
    if summary.note:
        print(f"note: no predicted latency: {summary.note}", file=sys.stderr)
    record = summary.to_json()
    if args.json:
        print_json(record)
        return 0
    print(f"arch    {record['arch']}")
    print(f"space   {record['space']}")
    print(f"macs    {human(record['macs'])} ({record['macs']:,}; fused multiply-add = 1)")
    print(f"params  {human(record['params'])} ({record['params']:,})")
    for key, what, stat in (("latency_ms", "predicted", "latency_statistic"),
                            ("measured_ms", "measured", "measured_statistic")):
        if key in record:
            by = f", table {Path(record['latency_table']).name}" if key == "latency_ms" else ""
            print(f"{key:<12}{record[key]:.3f} ms ({what} {record[stat]}, "
                  f"{record['threads']} thread(s), {record['provider']}, "
                  f"{record['precision']}{by})")
    return 0
