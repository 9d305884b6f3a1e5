"""``mobile-nas lut import``: turn a device's results into a latency table (``import`` is a
keyword, hence the module's name)."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, print_json
from mobile_nas.cost.latency.bundle import import_lut


def register(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "import", help="turn a device's results.json into a latency table",
        description="Check results measured on a device by run_lut.py against their bundle "
                    "manifest (hashes, every key present, positive finite times; with --bundle, "
                    "results measured on another bundle are refused) and write a table with "
                    "the device's metadata (CPU, OS, onnxruntime version); whole networks in "
                    "the bundle fit its "
                    "calibration. Nothing from the bundle or the results is executed. A text "
                    "file of 'FILE MEDIAN_MS' lines from onnxruntime_perf_test is accepted "
                    "with --bundle.")
    p.add_argument("results", metavar="RESULTS.json")
    p.add_argument("--out", "-o", required=True, metavar="T.json")
    p.add_argument("--bundle", metavar="bundle.zip",
                   help="the bundle that was measured (checks the manifest hash)")
    p.add_argument("--device", default="unknown",
                   help="device name for onnxruntime_perf_test text results")
    add_json_arg(p)
    p.set_defaults(handler=_import)


def _import(args: argparse.Namespace) -> int:
    result = import_lut(args.results, args.out, bundle=args.bundle, device=args.device)
    if args.json:
        print_json(result.to_json())
        return 0
    table = result.table
    md, cal = table.metadata, table.calibration
    runtime = f", onnxruntime {md['onnxruntime']}" if md.get("onnxruntime") else ""
    print(f"wrote {args.out}: {len(table)} layer keys of {table.space} measured on "
          f"{md.get('device')} ({md.get('cpu')}{runtime}); predicts the {table.predicts}")
    if cal is None:
        print(f"calibration: none ({md.get('calibration_skipped') or 'no whole networks'})")
    else:
        print(f"calibration: fitted on {len(cal.archs)} networks (in-sample MAPE "
              f"{cal.fit_mape:.2f}%)")
        if cal.held_out is not None:
            print(cal.held_out.summary())
    return 0
