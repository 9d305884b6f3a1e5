"""``mobile-nas export model.pt --out model.onnx``: verified ONNX (fp32, optionally INT8)."""

from __future__ import annotations

import argparse
import sys

from mobile_nas.commands._common import add_json_arg, positive_int, print_json
from mobile_nas.commands._options import add_size_args, size_knobs
from mobile_nas.export.deploy import export_checkpoint
from mobile_nas.export.usability import PROVIDERS, REQUIRE_CHOICES, ProviderCoverage
from mobile_nas.train.checkpoint import load_checkpoint


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a trained checkpoint to verified ONNX (fp32 and INT8)",
        description="Export model.pt (from 'mobile-nas train') to ONNX: input float pixels in "
                    "[0,1], NxCxHxW, normalization inside the graph, dynamic batch; metadata "
                    "arch, space, accuracy, input_format, labels, latency_ms, "
                    "mobile_nas_version. Verifies with onnx.checker (full check), onnxruntime "
                    "parity with PyTorch on real test images (fp32 within 1e-4) and test "
                    "accuracy. --int8 also writes <out stem>.int8.onnx (static QDQ, calibrated "
                    "on training images; if it loses more than 1 point of fp32's test "
                    "accuracy: exit 2, the fp32 file stays) and times both. "
                    "--mobile exports the mobile profile instead: batch 1, fixed shapes, "
                    "operators NNAPI and CoreML take (hard-swish as x*Clip(x+3,0,6)/6, "
                    "Reshape for Flatten, ...), same parity check, plus <out stem>.ort and "
                    "<out stem>.required_operators.config from onnxruntime's converter; with "
                    "--int8 the INT8 model has per-channel symmetric int8 weights. Every "
                    "export runs onnxruntime's mobile usability analysis and records, per "
                    "provider (NNAPI, CoreML NeuralNetwork, CoreML MLProgram), partitions "
                    "and nodes covered in the metadata (mobile_usability) and the output; "
                    "--require nnapi|coreml fails (exit 2) unless that provider takes the "
                    "whole graph. "
                    "--cells/--filters/--input/--channels/--classes (cell spaces) name the "
                    "network to export: the checkpoint's own, or its cells at another input "
                    "size (same weights; the checks then use resized images). "
                    "Example: mobile-nas export model.pt --mobile --require nnapi "
                    "--require coreml --out m.onnx",
    )
    p.add_argument("checkpoint", metavar="MODEL_PT", help="checkpoint from 'mobile-nas train'")
    p.add_argument("--out", "-o", required=True, help="ONNX file to write")
    p.add_argument("--opset", type=positive_int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--int8", action="store_true", help="also write a verified INT8 model")
    p.add_argument("--int8-out", help="INT8 file (default: <out stem>.int8.onnx)")
    p.add_argument("--mobile", action="store_true",
                   help="mobile profile: batch 1, fixed shapes, NNAPI/CoreML operators, "
                        "plus .ort and the reduced-operator config")
    p.add_argument("--require", action="append", default=[], metavar="PROVIDER",
                   choices=tuple(REQUIRE_CHOICES),
                   help="with --mobile: fail unless this provider takes the whole graph in "
                        "one partition (nnapi, coreml = both CoreML formats, coreml-nn, "
                        "coreml-mlprogram); repeatable")
    add_size_args(p)
    p.add_argument("--table", help="latency table for the predicted latency_ms "
                                   "(default: the shipped table of the space, if any)")
    p.add_argument("--data-dir", help="folder with the dataset files")
    p.add_argument("--calibration-images", type=positive_int, default=512)
    p.add_argument("--runs", type=int, default=100,
                   help="timed batch-1 runs per model (0: no timing; default 100)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="onnxruntime threads for timing (default 1)")
    add_json_arg(p)
    p.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    space = None
    knobs = size_knobs(args)
    if knobs.given:
        space = knobs.resize(load_checkpoint(args.checkpoint).architecture().search_space).name
    report = export_checkpoint(
        args.checkpoint, args.out, space=space, opset=args.opset, int8=args.int8,
        mobile=args.mobile, require=args.require,
        int8_out=args.int8_out, table=args.table, calibration_images=args.calibration_images,
        data_dir=args.data_dir, time_runs=max(0, args.runs), threads=args.threads,
        log=None if args.json else (lambda msg: print(msg, file=sys.stderr)))
    if args.json:
        print_json(report.to_json())
        return 0
    print_summary(report)
    return 0


def print_summary(report) -> None:
    pred = (f"{report.predicted_latency_ms:.3f} ms (table)" if report.predicted_latency_ms
            is not None else "n/a (no latency table covers this space)")
    print(f"fp32   {report.path}  ({report.size_bytes / 1024:.0f} KiB, {report.profile} "
          f"profile)")
    print(f"       test accuracy {report.test_accuracy:.4f} on {report.test_images} images; "
          f"parity max |diff| {report.max_abs_diff:.2e} on {report.parity_images} images")
    print(f"       predicted latency {pred}")
    _print_usability(report.mobile_usability)
    if report.int8:
        q = report.int8
        print(f"int8   {q.path}  ({q.size_bytes / 1024:.0f} KiB)")
        print(f"       test accuracy {q.test_accuracy:.4f} (drop {100 * q.accuracy_drop:.2f} "
              f"points); calibration {q.calibration} on {q.calibration_images} train images")
        _print_usability(q.mobile_usability)
    if report.ort:
        o = report.ort
        print(f"ort    {o['path']}" + (f", {o['int8_path']}" if o["int8_path"] else "")
              + f"  (parity max |diff| {o['max_abs_diff']:.2e})")
        print(f"       operators for a reduced onnxruntime build: {o['config']}")
    if report.timing:
        t = report.timing
        parts = [f"{k} p50 {t[k]['p50_ms']:.3f} ms" for k in ("fp32", "int8") if k in t]
        speed = f"; INT8 speed-up x{t['speedup']:.2f}" if "speedup" in t else ""
        print(f"timing batch 1, {t['threads']} thread(s): {', '.join(parts)}{speed}")


def _print_usability(usability: dict | None) -> None:
    """onnxruntime's mobile usability analysis, one line per provider."""
    if not usability:
        return
    for pid in PROVIDERS:
        print(f"       {ProviderCoverage.from_json(usability[pid]).summary()}")
