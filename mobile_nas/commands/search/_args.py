"""``mobile-nas search``'s arguments for what is searched: the space and data, the strategy,
the targets and reward, the latency source and the evaluator."""

from __future__ import annotations

import argparse
import json

from mobile_nas.commands._common import known_names, positive_float
from mobile_nas.commands._options import add_latency_target_args, add_val_size_arg
from mobile_nas.cost.latency.settings import PRECISIONS


def _strategy_names() -> list[str]:
    from mobile_nas.search.sampler import strategy_names

    return strategy_names()


def add_problem_args(p: argparse.ArgumentParser) -> None:
    """--space ... --latency-csv, in the order ``--help`` lists them."""
    p.add_argument("--space", "-s", required=True, metavar="S", help="search space name")
    p.add_argument("--dataset", "-d", default="fashion-mnist", metavar="D",
                   help="fashion-mnist (default), cifar10, synthetic or folder:PATH")
    p.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset files")
    add_val_size_arg(p)
    # checked by run_search (a one-line error), not by argparse
    known_names(p.add_argument(
        "--strategy", default="rl", metavar="X",
        help="one of %(known)s. Default and recommended: rl, the RL controller as RL-guided "
             "local search (a REINFORCE policy over one-decision edits of the current "
             "architecture, random restarts): the lowest mean regret of six strategies on 70 "
             "NAS-Bench-201 settings no tuning saw, ahead of local search (second) at 100 and "
             "300 queries, not significantly at 150 (benchmarks/results/nb201_rl.md). "
             "--strategy-option proposal=sample: the LSTM draws every architecture (Zoph & "
             "Le, MnasNet; the default before 2026-12-07)"), _strategy_names)
    p.add_argument("--strategy-option", action="append", default=[], type=_strategy_option,
                   metavar="KEY=VALUE", dest="strategy_options",
                   help="an option of the strategy (repeatable; VALUE read as JSON, else as "
                        "text), e.g. --strategy rl --strategy-option proposal=edit "
                        "--strategy-option edit_lr=0.2 --strategy-option restart=random (the "
                        "controller configuration frozen on benchmarks/results/nb201_rl.md); "
                        "an unknown option is one error line")
    add_latency_target_args(p, default=None,
                            ms_help="latency target in milliseconds of the latency table (or "
                                    "of --measure), e.g. --latency-target-ms 0.12")
    p.add_argument("--macs-target", type=positive_float, metavar="M",
                   help="MAC target (fused multiply-adds)")
    p.add_argument("--reward", default="hard", choices=("soft", "hard", "absolute"),
                   help="hard (default: the target is a budget; MnasNet w=0 under it, w=-1 "
                        "past it), MnasNet soft (w=-0.07 on both sides: trades accuracy for "
                        "latency, so picks may leave the target), or TuNAS absolute "
                        "(beta=-0.07)")
    p.add_argument("--skip-margin", type=_margin, default=0.1, metavar="F",
                   help="do not evaluate a candidate whose table-predicted latency or MACs "
                        "exceed the target by more than this fraction; it is told to the "
                        "strategy with its reward at accuracy 0 and does not count as a "
                        "trial (default 0.1; 'off' evaluates everything)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--table", metavar="T", help="latency table (default: the shipped table "
                                                  "of the space)")
    src.add_argument("--measure", action="store_true",
                     help="measure every architecture end to end in onnxruntime instead")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="precision whose latency is optimized (default fp32). int8: predicted "
                        "by a table built with 'lut build --precision int8' (a --table of "
                        "another precision is refused; without --table, the space's shipped "
                        "<space>_int8.json), or with --measure the INT8 QDQ export timed end "
                        "to end")
    p.add_argument("--profile-missing", action=argparse.BooleanOptionalAction, default=None,
                   help="time the layers a candidate needs that the latency table lacks, "
                        "with the table's own protocol, and add them to the table (a "
                        "shipped table: to its copy in ~/.cache/mobile-nas/latency_tables) "
                        "so later searches reuse them. Default: on for a table timed on "
                        "this machine; a table of another device is refused (time its "
                        "layers there: lut bundle --arch). --no-profile-missing refuses an "
                        "incomplete table up front")
    p.add_argument("--evaluator", default="supernet",
                   choices=("supernet", "proxy", "naswot", "synflow", "table"),
                   help="accuracy from a trained weight-sharing supernet with BN "
                        "recalibration (default), from training every architecture alone "
                        "for a few epochs (proxy; slow), a zero-cost score of the untrained "
                        "network (naswot: Mellor et al. 2021, one batch; synflow: Tanaka et "
                        "al. 2020, data-free: reads no dataset, so it scores any space, e.g. "
                        "mobile224; fast, no training, a ranking not an accuracy), or "
                        "looked up in --accuracy-csv (tabular benchmarks such "
                        "as NAS-Bench-201)")
    p.add_argument("--accuracy-csv", metavar="FILE",
                   help="with --evaluator table: CSV of arch,value (or NB201's index,arch,"
                        "cifar10_test,...; percent is read as such)")
    p.add_argument("--latency-csv", metavar="FILE",
                   help="with --evaluator table: CSV of arch,value or index,latency_ms (ms); "
                        "replaces --table/--measure")


def _margin(text: str) -> float | None:
    """--skip-margin: a fraction >= 0, or 'off'."""
    if text.strip().lower() in ("off", "none"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10:
        raise argparse.ArgumentTypeError(f"expected a fraction >= 0 (0.1 = 10%) or 'off', "
                                         f"got {text!r}")
    return value


def _strategy_option(text: str) -> tuple[str, object]:
    """--strategy-option KEY=VALUE: VALUE parsed as JSON (0.2, true, "x"), else kept as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. proposal=edit), got "
                                         f"{text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value
