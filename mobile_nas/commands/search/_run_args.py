"""``mobile-nas search``'s arguments for how a search runs: its budget, output folder and
study, seeds, supernet, threads and device, progress bars and output format."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import LazyNames, add_json_arg, positive_int
from mobile_nas.commands._options import add_device_args
from mobile_nas.search.presets import preset_names


def _preset_names() -> list[str]:
    return preset_names()


def add_run_args(p: argparse.ArgumentParser) -> None:
    """--trials ... --json, in the order ``--help`` lists them."""
    p.add_argument("--trials", type=positive_int, required=True, metavar="N",
                   help="finished trials to reach (counting earlier ones with --resume)")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="output folder")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna RDB storage URL shared by workers (default "
                        "sqlite:///RUN_DIR/study.db)")
    p.add_argument("--study-name", "--study", default="search", metavar="NAME",
                   help="study name inside the storage (default search)")
    p.add_argument("--resume", action="store_true",
                   help="continue the study in RUN_DIR/--storage (also: join as a worker)")
    p.add_argument("--seed", type=int, metavar="K",
                   help="the strategy's random seed (default: 0 for the worker that creates "
                        "the study, a seed derived from host and process id for a worker "
                        "joining it, so workers do not repeat each other; recorded in the "
                        "study)")
    p.add_argument("--split-seed", type=int, default=0, metavar="K",
                   help="seed of the train/validation split and of the evaluator's fixed "
                        "batches (default 0, the split the shipped supernet was trained "
                        "beside); change --seed, not this, to repeat a search")
    p.add_argument("--preset", default="default", choices=LazyNames(_preset_names),
                   metavar="P", help="supernet budget, one of %(choices)s: quick (minutes on "
                                     "2 cores) or default (the default)")
    p.add_argument("--supernet", metavar="PATH",
                   help="reuse a trained supernet (an earlier RUN_DIR/supernet.pt or a "
                        ".safetensors file); default: the space's shipped pretrained "
                        "supernet when this run's dataset and --split-seed match its "
                        "split")
    p.add_argument("--train-supernet", action="store_true",
                   help="train a fresh supernet (--preset budget) instead of the shipped one; "
                        "under torchrun (torchrun --nproc_per_node N -m mobile_nas search "
                        "--train-supernet ...) every process trains it, rank 0 searches")
    p.add_argument("--threads", type=positive_int, default=1, metavar="N",
                   help="torch threads (default 1: these small networks train 3-4x faster "
                        "on one thread than on two when the 2 cores are shared)")
    add_device_args(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_json_arg(p)
