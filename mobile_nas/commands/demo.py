"""``mobile-nas demo``: the whole path on Fashion-MNIST, minutes on a laptop CPU.

The pipeline is :func:`mobile_nas.pipeline.run_demo`; this command parses its settings,
prints progress on stderr and the result on stdout.
"""

from __future__ import annotations

import argparse
import sys

from mobile_nas.commands._common import positive_int
from mobile_nas.commands._options import add_device_args, add_latency_target_args, add_val_size_arg
from mobile_nas.pipeline import DemoConfig, run_demo
from mobile_nas.report import summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the whole path on Fashion-MNIST (minutes on a CPU)",
        description="On Fashion-MNIST with the latency table of this machine (the shipped "
                    "fmnist28 table if it was timed on this CPU model, else one built here "
                    "once, three passes of about a minute) and the shipped pretrained "
                    "supernet (a quick one is trained instead with --data-dir), re-time the "
                    "tables' anchor on this machine, run the RL search under a "
                    "latency target set by a hand-designed reference (default: as fast as "
                    "fmnist28_mnasnet; hard reward), time its best finalists against that "
                    "reference here and pick the most accurate that measures within the "
                    "target, train it, export verified fp32 and INT8 ONNX (server "
                    "profile, and the mobile profile with .ort files and onnxruntime's "
                    "NNAPI/CoreML usability analysis), time both with onnxruntime and write "
                    "the HTML report. Re-running resumes.",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    add_latency_target_args(p, default="fmnist28_mnasnet",
                            ms_help="a target in milliseconds of the table instead")
    p.add_argument("--table", metavar="shipped|T.json",
                   help="latency table: 'shipped' uses the shipped fmnist28 table even if it "
                        "was timed on another CPU model; or a table file (default: the table "
                        "of this machine, built into --out when the shipped one is another "
                        "CPU's)")
    p.add_argument("--trials", type=positive_int, default=40, help="search trials (default 40)")
    p.add_argument("--epochs", type=positive_int, default=2,
                   help="epochs to train the winner (default 2)")
    p.add_argument("--train-subset", type=positive_int, metavar="N",
                   help="train the winner on N training images (default: all 55000)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's)")
    add_device_args(p)
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the search and of the winner's training (default 0; the "
                        "train/validation split stays the shipped supernet's)")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST files")
    add_val_size_arg(p)
    p.set_defaults(handler=_demo)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace) -> int:
    result = run_demo(DemoConfig(
        out_dir=args.out, latency_target=args.latency_target,
        latency_target_ms=args.latency_target_ms, verify_top=args.verify_top,
        probe_reference=args.probe_reference,
        trials=args.trials,
        epochs=args.epochs, train_subset=args.train_subset, threads=args.threads,
        device=args.device, amp=args.amp, seed=args.seed, data_dir=args.data_dir,
        val_size=args.val_size, table=args.table), log=_say)
    d = result.deploy
    target = (f"{args.latency_target_ms:g} ms" if args.latency_target_ms is not None
              else args.latency_target)
    lines = summary.measurement_lines(d, target=target, onnx_path=result.onnx_path)
    lines += [f"search         {result.best['trials']} trials, {result.run_dir}/ (best.json, "
              f"pareto.json, trials.csv, study.db)",
              f"model          {result.model_path}"]
    lines += summary.deployable_lines(d, onnx_path=result.onnx_path)
    lines += summary.comparison_lines(d)
    lines += [f"report         {result.report.html}", summary.time_line(d)]
    print("\n".join(lines))
    return 0
