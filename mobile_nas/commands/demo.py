"""``mobile-nas demo``: the whole path on Fashion-MNIST, minutes on a laptop CPU.

The pipeline is :func:`mobile_nas.pipeline.run_demo`; this command parses its settings,
prints progress on stderr and the result on stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobile_nas.commands._common import (
    add_device_args,
    add_latency_target_args,
    add_val_size_arg,
    positive_int,
)
from mobile_nas.cost.latency.statistic import WALL_MEDIAN
from mobile_nas.errors import MobileNasError
from mobile_nas.export.usability import PROVIDERS, ProviderCoverage
from mobile_nas.pipeline import DemoConfig, run_demo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the whole path on Fashion-MNIST (minutes on a CPU)",
        description="On Fashion-MNIST with the shipped fmnist28 latency table and the shipped "
                    "pretrained supernet (a quick one is trained instead with --data-dir), "
                    "re-time the tables' anchor on this machine, run the RL search under a "
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
                            ms_help="a target in milliseconds of the shipped table instead")
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
        trials=args.trials,
        epochs=args.epochs, train_subset=args.train_subset, threads=args.threads,
        device=args.device, amp=args.amp, seed=args.seed, data_dir=args.data_dir,
        val_size=args.val_size), log=_say)
    d = result.deploy
    report, mobile, q = d.export, d.export_mobile, d.export.int8
    ort, usability, server_usability = mobile.ort, mobile.mobile_usability, report.mobile_usability
    if ort is None or usability is None or server_usability is None or d.total_seconds is None:
        raise MobileNasError("the demo's deploy record lacks the mobile export or its times")
    timing = report.timing or {}
    print(f"architecture   {d.arch}")
    print(f"               {d.macs / 1e6:.2f}M MACs, {d.params / 1e3:.1f}k params")
    print(f"test accuracy  {100 * d.train.test_accuracy:.2f}% (PyTorch), "
          f"{100 * report.test_accuracy:.2f}% fp32 ONNX"
          + (f", {100 * q.test_accuracy:.2f}% INT8 ONNX" if q else ""))
    lat = [f"{k} {timing[k]['p50_ms']:.3f} ms" for k in ("fp32", "int8") if k in timing]
    target = (f"{args.latency_target_ms:g} ms" if args.latency_target_ms is not None
              else args.latency_target)
    measured = f"latency        measured {WALL_MEDIAN.name} (p50) {', '.join(lat)} (batch 1, "
    if d.references and d.references[0].measured_ratio is not None:
        # the deployable (dynamic batch, input normalization inside) is not the network the
        # table predicts: prediction and target are compared below, on the tables' export
        print(f"{measured}1 thread, {result.onnx_path.name}, one timing run); target "
              f"{target}: predicted and measured against the reference under 'vs hand design'")
    else:
        pred = (f"; predicted {_predicted(d)}{report.predicted_latency_ms:.3f} ms "
                f"({_table(d)}, target {target})"
                if report.predicted_latency_ms is not None else "")
        print(f"{measured}1 thread){pred}")
    if d.predicted_int8_ms is not None and "int8" in timing:
        what = f"{d.predicted_int8_statistic} " if d.predicted_int8_statistic else ""
        where = f" ({Path(d.int8_latency_table).name})" if d.int8_latency_table else ""
        print(f"INT8 latency   measured {timing['int8']['p50_ms']:.3f} ms, predicted "
              f"{what}{d.predicted_int8_ms:.3f} ms{where}")
    if "speedup" in timing:
        print(f"INT8 speed-up  x{timing['speedup']:.2f}")
    if report.int8_error:
        print(f"INT8           not kept: {report.int8_error}")
    print(f"search         {result.best['trials']} trials, {result.run_dir}/ (best.json, "
          f"pareto.json, trials.csv, study.db)")
    print(f"model          {result.model_path}")
    print(f"onnx           {result.onnx_path}" + (f", {q.path}" if q else ""))
    print(f"mobile         {mobile.path}, {ort['path']}"
          + (f", {ort['int8_path']}" if ort["int8_path"] else "")
          + f" (batch 1; parity max |diff| {mobile.max_abs_diff:.1e}, test accuracy "
          f"{100 * mobile.test_accuracy:.2f}%)")
    for i, p in enumerate(PROVIDERS):  # onnxruntime's mobile usability analysis
        label = "mobile EPs" if i == 0 else ""
        print(f"{label:15s}{ProviderCoverage.from_json(usability[p]).summary()}")
    server = [server_usability[p] for p in PROVIDERS]
    print(f"{'':15s}(server {result.onnx_path.name}: " + ", ".join(
        f"{c['provider']} {c['supported_nodes']}/{c['nodes']}" for c in server) + " nodes)")
    _print_comparison(d)
    print(f"report         {result.report.html}")
    print(f"time           {d.total_seconds / 60:.1f} min ("
          + ", ".join(f"{k} {v:.0f} s" for k, v in d.stage_seconds.items()) + ")")
    return 0


def _predicted(d) -> str:
    """``"cpu-clock min "``: what the record's predictions are, when it says so."""
    return f"{d.predicted_statistic} " if d.predicted_statistic else ""


def _table(d) -> str:
    return f"table {Path(d.latency_table).name}" if d.latency_table else "table"


def _print_comparison(d) -> None:
    """The pick beside the hand-designed references: ratios to one reference timed
    interleaved in several runs (and ms), the table's predicted ratio, stand-alone accuracy
    (1-epoch ground truth, validation split) where the network is in the shipped set."""
    compared = d.references
    if not compared:
        return
    if compared[0].measured_ratio is None:
        _print_comparison_ms(d)
        return
    ref = compared[0].ratio_to
    runs = max(len(c.measured_ratios) for c in compared)
    print(f"vs hand design (exported as the tables time them: fp32, batch 1, 1 thread; timed "
          f"interleaved with {ref} in {runs} runs; accuracy: stand-alone 1-epoch ground "
          f"truth, validation)")
    for c in compared:
        acc = (f"val {100 * c.ground_truth_val:.2f}%" if c.ground_truth_val is not None
               else "not in the ground-truth set")
        spread = ""
        if len(c.measured_ratios) > 1 and c.name != ref:
            spread = (f" (runs {min(c.measured_ratios):.3f}-{max(c.measured_ratios):.3f})")
        pred = (f", predicted {c.predicted_ratio:.3f}x ({c.predicted_ms:.3f} ms)"
                if c.predicted_ratio is not None else "")
        print(f"  {c.name:22s} measured {c.measured_ratio:.3f}x {ref}{spread} "
              f"{c.measured_ms:.3f} ms{pred}; {acc}")
    print("  measured over 5 seeds x 3 strategies: benchmarks/results/search_vs_groundtruth.md")


def _print_comparison_ms(d) -> None:
    """A record from before ratios: milliseconds of one interleaved timing run."""
    compared = d.references
    print("vs hand design (fp32, batch 1, 1 thread, one interleaved timing run; accuracy: "
          "stand-alone 1-epoch ground truth, validation)")
    if any(c.predicted_ms is not None for c in compared):
        print(f"  measured {WALL_MEDIAN.name}; predicted {_predicted(d)}({_table(d)})")
    for c in compared:
        acc = (f"val {100 * c.ground_truth_val:.2f}%" if c.ground_truth_val is not None
               else "not in the ground-truth set")
        pred = f"predicted {c.predicted_ms:.3f} ms, " if c.predicted_ms is not None else ""
        print(f"  {c.name:22s} measured {c.measured_ms:.3f} ms ({pred.rstrip(', ')}); {acc}")
