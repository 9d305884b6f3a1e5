"""Helpers shared by the subcommands: output, common options, argument types."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from mobile_nas.space.scaled import SizeKnobs

if TYPE_CHECKING:
    from mobile_nas.space.scaled import SizeKnobs


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


class LazyNames:
    """The names a registry holds, looked up on first use, so that building the parser
    imports no heavy module (strategies and presets import torch). Works as argparse
    ``choices`` and, through :func:`known_names`, in help text."""

    def __init__(self, names: Callable[[], Iterable[str]]) -> None:
        self._names = names
        self._cache: list[str] | None = None

    def _get(self) -> list[str]:
        if self._cache is None:
            self._cache = list(self._names())
        return self._cache

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __contains__(self, name: object) -> bool:
        return name in self._get()

    def __len__(self) -> int:
        return len(self._get())

    def __str__(self) -> str:
        return ", ".join(self._get())


def known_names(action: argparse.Action, names: Callable[[], Iterable[str]]) -> None:
    """Lets the help of ``action`` say ``%(known)s``: ``names()`` comma separated, looked up
    when the help is shown (argparse fills help from the action's attributes)."""
    action.known = LazyNames(names)  # type: ignore[attr-defined]


def add_space_arg(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--space", "-s", required=required, metavar="S",
                        help="search space name (see 'mobile-nas space show --list')")


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")


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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0 (e.g. --verify-top, where 0 turns a step off)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_latency_target_args(p: argparse.ArgumentParser, *, default: str | None,
                            ms_help: str) -> None:
    """``--latency-target REF|FxREF`` or ``--latency-target-ms X`` (one of them), and
    ``--verify-top K``: the finalists timed against the reference on the machine at hand."""
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
                        "that measures within the target by more than the runs' noise "
                        "(best.json: the pick, predicted_best, and the 'verified' block). Not "
                        "for a table imported from a device bundle (time them there with "
                        "'mobile-nas lut bundle --arch'). Default 5; 0 turns it off")


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


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def human(n: float) -> str:
    """12_345_678 → '12.35M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"
