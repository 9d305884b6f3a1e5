"""``mobile-nas transfer ARCH``: a searched cell restacked in a larger network, and its costs."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, human, print_json
from mobile_nas.commands._options import add_size_args, size_knobs
from mobile_nas.cost.summary import transfer_costs
from mobile_nas.space import canonical_space_name, load_arch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transfer", help="restack a searched cell at another size (N cells, F filters, input)",
        description="Take the cells of ARCH (found on a small proxy) into a network with N "
                    "cells per stack, F initial filters and another input size, and report "
                    "the MACs, params and latency of both. The scaled space is named "
                    "<space>@n<N>-f<F>-<C>x<H>x<W>-k<classes>; pass that name as --space to "
                    "train, export, cost or 'lut build' the transferred network. Example: "
                    "mobile-nas transfer ARCH --space nasnet --cells 4 --filters 32 "
                    "--input 224 --channels 3 --classes 1000",
    )
    p.add_argument("arch", metavar="ARCH", help="arch string or JSON file of the cell space")
    p.add_argument("--space", "-s", metavar="S", help="the cell space ARCH comes from "
                   "(nasnet, nb201 or a scaled name; optional for JSON files)")
    add_size_args(p)
    p.add_argument("--table", "-t", metavar="T.json",
                   help="latency table of the scaled space: adds its predicted latency_ms")
    p.add_argument("--source-table", metavar="T.json",
                   help="latency table of the source space: adds its predicted latency_ms")
    p.add_argument("--measure", action="store_true",
                   help="export both networks to ONNX and time them with onnxruntime "
                        "(measured_ms, median of 100 runs)")
    p.add_argument("--out", metavar="FILE.json",
                   help="write the transferred architecture as JSON (for train/export/cost)")
    add_json_arg(p)
    p.set_defaults(handler=_transfer)


def _transfer(args: argparse.Namespace) -> int:
    costs = transfer_costs(load_arch(args.arch, canonical_space_name(args.space)),
                           size_knobs(args), table=args.table, source_table=args.source_table,
                           measure=args.measure)
    record = costs.to_json()
    if args.out:
        costs.save_target(args.out)
    if args.json:
        print_json(record)
        return 0
    print(f"arch  {record['arch']}")
    for role in ("source", "target"):
        r = record[role]
        line = (f"{role:<7} {r['space']:<34} N={r['cells']} F={r['filters']} "
                f"macs={human(r['macs'])} params={human(r['params'])}")
        for key in ("latency_ms", "measured_ms"):
            if key in r:
                line += f" {key}={r[key]:.3f}"
        print(line)
    print("ratio   " + " ".join(f"{k}={v:g}x" for k, v in record["ratio"].items()))
    if not {"latency_ms", "measured_ms"} & set(record["target"]):
        t = record["target"]
        print(f"latency: add --measure, or --table T.json of {t['space']} (build one with "
              f"'mobile-nas lut build --space {t['space']} --arch ARCH --out T.json')")
    if args.out:
        print(f"wrote {args.out}")
    return 0
