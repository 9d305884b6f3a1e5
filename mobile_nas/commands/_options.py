"""Option groups shared by the commands that search, train and export: the device, the
network's size knobs, the latency target and the validation split."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import non_negative_int, positive_float, positive_int
from mobile_nas.cost.latency.probe import DEFAULT_PROBES
from mobile_nas.space.scaled import SizeKnobs


def add_device_args(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--amp/--no-amp`` for commands that train or score networks."""
    parser.add_argument("--device", default="auto", metavar="D",
                        help="where torch trains and scores: auto (CUDA, else MPS, else CPU; "
                             "the default), cpu, cuda, cuda:N or mps. Latency is always "
                             "measured with onnxruntime, never on this device")
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                        help="mixed precision (bfloat16, or float16 with gradient scaling "
                             "where bfloat16 is not supported); default: on for CUDA only")


def add_size_args(p: argparse.ArgumentParser) -> None:
    """--cells/--filters/--input/--channels/--classes: the size knobs of a cell space (shared
    by transfer, train and export); read them back with :func:`size_knobs`."""
    p.add_argument("--cells", "-N", type=positive_int, help="cells per stack (default: keep)")
    p.add_argument("--filters", "-F", type=positive_int,
                   help="initial filters (default: keep)")
    p.add_argument("--input", type=positive_int, metavar="PX",
                   help="square input size in pixels (default: keep)")
    p.add_argument("--channels", type=positive_int, help="input channels (default: keep)")
    p.add_argument("--classes", type=positive_int, help="output classes (default: keep)")


def size_knobs(args: argparse.Namespace) -> SizeKnobs:
    """The knobs :func:`add_size_args` parsed."""
    return SizeKnobs(cells=args.cells, filters=args.filters, input_size=args.input,
                     channels=args.channels, num_classes=args.classes)


def add_latency_target_args(p: argparse.ArgumentParser, *, default: str | None,
                            ms_help: str, probe_default: int = DEFAULT_PROBES) -> None:
    """``--latency-target REF|FxREF`` or ``--latency-target-ms X`` (one of them),
    ``--verify-top K``: the finalists timed against the reference on the machine at hand, and
    ``--probe-reference K``: the reference placed by probe networks timed with it first."""
    target = p.add_mutually_exclusive_group()
    target.add_argument("--latency-target", default=default, metavar="REF|FxREF",
                        help="latency target set by a reference network: REF (as fast as it) "
                             "or FxREF, F a factor with 0 < F <= 10: a reference name "
                             "(fmnist28_mnasnet; 0.9xfmnist28_mnasnet is 10%% faster), an arch "
                             "string of the space, or an ONNX file exported by mobile-nas "
                             "(1xmodel.onnx). Predicted in ms with the latency table (printed: "
                             "'target 0.9 x fmnist28_mnasnet = 0.112 ms on TABLE'); what holds "
                             "across machines is the ratio the finalists measure"
                             + (f" (default {default})" if default else ""))
    target.add_argument("--latency-target-ms", type=positive_float, metavar="X", help=ms_help)
    p.add_argument("--verify-top", type=non_negative_int, default=5, metavar="K",
                   help="time the K best distinct candidates feasible by prediction against "
                        "the reference (the --latency-target's, else the space's first "
                        "reference, the ms target read as a factor of its predicted latency) "
                        "in 3 interleaved runs on this machine, and pick the most accurate "
                        "that measures within the target by more than the runs' noise; "
                        "when none does, up to 2 more rounds time the next best candidates "
                        "that still meet the target after the measured finalists' error "
                        "(best.json: the pick, predicted_best, and the 'verified' block). Not "
                        "for a table imported from a device bundle (time them there with "
                        "'mobile-nas lut bundle --arch'). Default 5; 0 turns it off")
    p.add_argument("--probe-reference", type=non_negative_int, default=probe_default,
                   metavar="K",
                   help="before searching, time K probe networks interleaved with the "
                        "target's reference on this machine (seconds) and take every "
                        "predicted ratio, and the target, against the reference as the "
                        "probes place it in the table's ms: much of a table's ratio error is "
                        "one factor shared by all candidates, which this removes (on 50 new "
                        "networks, ratio MAPE 3.8-4.3%% against 6.9-9.1%% without: "
                        "benchmarks/results/latency_prediction_intel_v6.md). Recorded in "
                        "RUN_DIR/reference_probe.json and reused on --resume; not for a table "
                        "imported from a device bundle. "
                        f"Default {probe_default}; 0 turns it off")


def val_size(text: str) -> int | float:
    """--val-size: a count N >= 1 or a fraction 0 < F < 1 of the training images."""
    try:
        value: int | float = int(text)
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            value = -1
        if not 0 < value < 1:
            value = -1
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a count N >= 1 or a fraction 0 < F < 1 "
                                         f"of the training images, got {text!r}")
    return value


def add_val_size_arg(p: argparse.ArgumentParser) -> None:
    """``--val-size N|F``: the validation split held out of the training images."""
    p.add_argument("--val-size", type=val_size, metavar="N|F",
                   help="validation images held out of the training split: a count N or a "
                        "fraction F (0.1 = 10%%); default 10%% of the training images, at "
                        "most 5000 (Fashion-MNIST: 5000)")
