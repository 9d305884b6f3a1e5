"""``mobile-nas lut bundle``: zip the layer models and a standalone runner for a device."""

from __future__ import annotations

import argparse
import os

from mobile_nas.commands._common import add_json_arg, positive_int, print_json
from mobile_nas.commands.lut._shared import calibration_counts
from mobile_nas.cost.latency.build import load_space_archs
from mobile_nas.cost.latency.bundle import bundle_lut
from mobile_nas.cost.latency.settings import DEFAULTS
from mobile_nas.space import get_space


def register(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "bundle", help="zip the layer models + a standalone runner for a target device",
        description="Write a self-contained bundle: one ONNX model per layer key (the same "
                    "export as 'lut build'), a few whole networks for calibration, a manifest "
                    "with SHA-256 hashes, run_lut.py (needs only numpy and onnxruntime) and "
                    "instructions for onnxruntime_perf_test. Example: mobile-nas lut bundle "
                    "--space fmnist28 --arch fmnist28_mobilenet_v2 --out bundle.zip")
    p.add_argument("--space", "-s", required=True, metavar="S")
    p.add_argument("--out", "-o", required=True, metavar="bundle.zip")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH",
                   help="only the layers of this architecture, plus those of the random "
                        "calibration networks (repeatable)")
    p.add_argument("--calibrate", type=int, default=None, metavar="N",
                   help="whole networks the imported table is calibrated on, timed with the "
                        "anchor on the device (default: three per weight of the space's "
                        "network model, at least 32, as 'lut build'; at least 3; 0 = none)")
    p.add_argument("--held-out", type=int, default=16, metavar="M",
                   help="whole networks that check the calibration (default 16, at least 2)")
    p.add_argument("--rounds", type=positive_int, default=DEFAULTS.rounds)
    p.add_argument("--runs-per-round", type=positive_int, default=DEFAULTS.runs_per_round)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="what the runner times (default wall)")
    p.add_argument("--statistic", choices=("median", "min"), default="median",
                   help="what the table predicts with: median (default) or min, the fastest "
                        "of the timed runs (far steadier on a busy shared machine)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    add_json_arg(p)
    p.set_defaults(handler=_bundle)


def _bundle(args: argparse.Namespace) -> int:

    space = get_space(args.space)
    archs = load_space_archs(args.arch, space.name)
    n_fit, n_held = calibration_counts(args, space)
    result = bundle_lut(space, args.out, archs=archs, n_fit=n_fit, n_held_out=n_held,
                        seed=args.seed, rounds=args.rounds, runs_per_round=args.runs_per_round,
                        clock=args.clock, statistic=args.statistic,
                        progress=not args.no_progress)
    if args.json:
        print_json(result.to_json())
    else:
        print(f"wrote {args.out}: {result.layer_models} layer models + {len(result.fit)} "
              f"networks to calibrate on and {len(result.held_out)} to check it "
              f"({result.size / 1e6:.1f} MB). On the device: 'python run_lut.py "
              f"{os.path.basename(args.out)} --out results.json', then 'mobile-nas lut import "
              f"results.json --bundle {args.out} --out T.json'")
    return 0
