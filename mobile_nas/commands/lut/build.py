"""``mobile-nas lut build``: profile the layers of a space into a latency table."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, positive_int
from mobile_nas.commands.lut._shared import calibration_counts, print_build_result
from mobile_nas.cost.latency.build import (
    DEFAULT_PASSES,
    build_passes,
    default_passes,
    load_space_archs,
)
from mobile_nas.cost.latency.calibrate import (
    DEFAULT_FIT_NETWORKS,
    DEFAULT_HELD_OUT,
    MIN_FIT_NETWORKS,
    MIN_HELD_OUT,
)
from mobile_nas.cost.latency.network_model import SHAPE_MIN_NETWORKS
from mobile_nas.cost.latency.settings import BUILDABLE_PRECISIONS, DEFAULTS, ProfileSettings
from mobile_nas.space import get_space


def _add_timing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=1,
                   help="onnxruntime intra-op threads (default 1, the search default)")
    p.add_argument("--provider", default="CPUExecutionProvider",
                   help="onnxruntime execution provider (default CPUExecutionProvider)")
    p.add_argument("--opt-level", choices=("disable", "basic", "extended", "all"),
                   default="all", help="onnxruntime graph optimization level (default all)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed time (default); cpu: CPU time of the timing thread, "
                        "robust on a busy shared machine (needs --threads 1)")


def register(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "build", help="profile the layers of a space into a table",
        description="Export every layer key of the space (or only those of --arch "
                    "architectures) to ONNX and time them with onnxruntime, repeats "
                    "interleaved across keys; a fixed sentinel model timed in every chunk "
                    "re-times chunks of a disturbed machine (logged in metadata.sentinel). "
                    "The table is written atomically after every chunk of keys; --resume "
                    "continues a killed build. Then the calibration is fitted on --calibrate "
                    "networks measured end to end (wall-clock median, what users measure) and "
                    "checked on --held-out others; the build ends by printing that check. With "
                    "--arch, the layers of a few random networks of the space (--seed) are "
                    "added so that enough networks are covered. --precision int8 times every "
                    "layer and calibration network as the INT8 QDQ graph 'export --int8' "
                    "writes (same quantizer), in a table of its own (e.g. --out "
                    "fmnist28_int8.json). Example: "
                    "mobile-nas lut build --space fmnist28 --out my.json --resume")
    p.add_argument("--space", "-s", required=True, metavar="S", help="search space")
    p.add_argument("--out", "-o", required=True, metavar="T.json", help="table to write")
    p.add_argument("--arch", action="append", metavar="ARCH", default=[],
                   help="only the layers of this architecture, plus those of the random "
                        "calibration networks (repeatable; arch string, reference name or "
                        "JSON file)")
    _add_timing_args(p)
    p.add_argument("--precision", choices=BUILDABLE_PRECISIONS, default="fp32",
                   help="precision of the timed models (default fp32); int8: each layer's "
                        "and each calibration network's ONNX export quantized by the "
                        "quantizer of 'export --int8' (static QDQ, per-channel int8 weights, "
                        "uint8 activations, calibrated on random uint8 inputs of the model's "
                        "shape), recorded in the table's metadata; --resume refuses a table "
                        "of the other precision, and 'search --precision int8' needs such a "
                        "table")
    p.add_argument("--rounds", type=positive_int, default=DEFAULTS.rounds,
                   help=f"interleaved rounds per key (default {DEFAULTS.rounds})")
    p.add_argument("--runs-per-round", type=positive_int, default=DEFAULTS.runs_per_round,
                   help=f"inferences per key and round (default {DEFAULTS.runs_per_round})")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs per key (default 5)")
    p.add_argument("--statistic", choices=("median", "min"), default="median",
                   help="per-layer statistic summed: median (default) or min, the fastest "
                        "of the timed runs (far steadier on a busy shared machine); the "
                        "calibration maps the sum to the wall-clock median either way")
    p.add_argument("--chunk", type=positive_int, default=DEFAULTS.chunk,
                   help=f"keys timed together and saved together, a seeded random mix of "
                        f"the space's layers (default {DEFAULTS.chunk})")
    p.add_argument("--calibrate", type=int, default=None, metavar="N",
                   help=f"fit the calibration on N end-to-end measured networks, timed "
                        f"interleaved with the anchor in 3 separate runs (default: three per "
                        f"weight of the space's per-op network model, at least "
                        f"{DEFAULT_FIT_NETWORKS}: 39 for fmnist28, 63 for nasnet; at least "
                        f"{MIN_FIT_NETWORKS}; 0 = no calibration: plain layer sums)")
    p.add_argument("--held-out", type=int, default=DEFAULT_HELD_OUT, metavar="M",
                   help=f"check the calibration on M other networks (default "
                        f"{DEFAULT_HELD_OUT}, at least {MIN_HELD_OUT})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the random calibration networks (recorded)")
    p.add_argument("--passes", type=positive_int, default=None, metavar="N",
                   help=f"N independent builds (calibration seeds --seed, --seed+1, ...), each "
                        f"kept as OUT.passI.json, merged into --out as 'lut merge' merges: "
                        f"predictions are the median of the builds'. On a 2-core VM one "
                        f"build's per-network errors were largely its own: "
                        f"benchmarks/results/latency_prediction_intel_v5.md. Default "
                        f"{DEFAULT_PASSES} for a whole space calibrated on "
                        f"{SHAPE_MIN_NETWORKS}+ networks (the default), else 1")
    p.add_argument("--resume", action="store_true",
                   help="keep the entries already in --out (with --passes: in each pass's "
                        "file) and time only the others")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_arg(p)
    p.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    space = get_space(args.space)
    n_fit, n_held = calibration_counts(args, space)
    settings = ProfileSettings(threads=args.threads, provider=args.provider,
                               opt_level=args.opt_level, warmup=args.warmup,
                               rounds=args.rounds, runs_per_round=args.runs_per_round,
                               chunk=args.chunk, clock=args.clock, statistic=args.statistic,
                               precision=args.precision)
    archs = load_space_archs(args.arch, space.name)
    passes = args.passes or default_passes(restricted=bool(archs), n_fit=n_fit)
    result = build_passes(space, args.out, passes=passes, seed=args.seed,
                          resume=args.resume, archs=archs,
                          settings=settings, n_fit=n_fit, n_held_out=n_held,
                          progress=not args.no_progress)
    print_build_result(result, args.json)
    return 0
