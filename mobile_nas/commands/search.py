"""``mobile-nas search``: a latency/MAC-constrained architecture search, resumable."""

from __future__ import annotations

import argparse
import json
from contextlib import nullcontext

from mobile_nas.commands._common import (
    LazyNames,
    add_device_args,
    add_json_arg,
    add_latency_target_args,
    add_val_size_arg,
    known_names,
    positive_float,
    positive_int,
    print_json,
)
from mobile_nas.cost.latency.settings import PRECISIONS


def _strategy_names() -> list[str]:
    from mobile_nas.search.sampler import strategy_names

    return strategy_names()


def _preset_names() -> list[str]:
    from mobile_nas.search.presets import preset_names

    return preset_names()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="search the space under latency and MAC targets",
        description="Search architectures of a space that maximize validation accuracy under "
                    "a latency target (ms, from the space's latency table, or measured with "
                    "--measure; or set by a reference network, --latency-target) and/or a "
                    "MAC target. Accuracy comes from a weight-sharing "
                    "supernet: the space's shipped pretrained one where it fits the run "
                    "(fmnist28 on Fashion-MNIST), else one trained first on the dataset's "
                    "training split (or --supernet). "
                    "Every trial is recorded in an Optuna study (RUN_DIR/study.db or "
                    "--storage); kill it at any time and rerun with --resume. Outputs: "
                    "RUN_DIR/best.json, pareto.json, trials.csv, pareto.png.",
        epilog="Example: mobile-nas search --space fmnist28 --dataset fashion-mnist "
               "--strategy rl --latency-target-ms 1.5 --preset quick --trials 30 --out RUN. "
               "Faster than a reference: --latency-target 0.9xfmnist28_mnasnet (10% under "
               "the reference's latency; the finalists are then timed against it here, "
               "--verify-top). "
               "INT8 latency: add --precision int8 --table T_int8.json (a table built with "
               "'mobile-nas lut build --space fmnist28 --precision int8 --out T_int8.json').",
    )
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
    p.set_defaults(handler=_search)


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


def _search(args: argparse.Namespace) -> int:
    from mobile_nas.cost.latency.errors import LatencyTargetError
    from mobile_nas.search.errors import SearchError
    from mobile_nas.search.runner import SearchConfig, run_search, train_search_supernet

    if args.latency_target_ms is None and args.latency_target is None and \
            args.macs_target is None:
        raise SearchError("give a target: --latency-target-ms or --latency-target, and/or "
                          "--macs-target")
    config = SearchConfig(
        space=args.space, strategy=args.strategy, trials=args.trials, out_dir=args.out,
        dataset=args.dataset, data_dir=args.data_dir, val_size=args.val_size,
        latency_target_ms=args.latency_target_ms, latency_target=args.latency_target,
        macs_target=args.macs_target, verify_top=args.verify_top,
        reward=args.reward, table=args.table, measure=args.measure,
        precision=args.precision, profile_missing=args.profile_missing,
        storage=args.storage,
        study_name=args.study_name, resume=args.resume, seed=args.seed,
        split_seed=args.split_seed, skip_margin=args.skip_margin, preset=args.preset,
        supernet=args.supernet, train_supernet=args.train_supernet, evaluator=args.evaluator,
        strategy_options=dict(args.strategy_options),
        threads=args.threads, device=args.device, amp=args.amp,
        progress=not args.no_progress)
    from mobile_nas.search.table_evaluator import table_search_inputs

    evaluator, latency_fn = table_search_inputs(
        space=args.space, evaluator=args.evaluator, accuracy_csv=args.accuracy_csv,
        latency_csv=args.latency_csv, table=args.table, measure=args.measure,
        precision=args.precision)
    from mobile_nas.train.distributed import distributed, launched_by_torchrun

    # one process: as ever (the device is checked only where torch computes)
    with distributed(args.device) if launched_by_torchrun() else nullcontext() as dist:
        if dist is not None and not dist.is_main:  # trains the supernet with rank 0
            train_search_supernet(config, dist)
            return 0
        try:
            # issue 28: table_search_inputs (search/, typed next) returns it as an object
            result = run_search(config, evaluator=evaluator,
                                latency_fn=latency_fn,  # type: ignore[arg-type]
                                distributed=dist if dist is not None and dist.enabled
                                else None)
        except LatencyTargetError as exc:
            raise SearchError(exc.worded("--latency-target")) from None
    from mobile_nas.report.pareto import plot_run_pareto

    plot_run_pareto(result.out_dir)
    best = result.best
    if args.json:
        print_json({"out_dir": str(result.out_dir), "trials": result.trials,
                    "storage": result.storage, "study_name": result.study_name,
                    "seconds": round(result.seconds, 1), "evaluator": result.evaluator,
                    "best": best, "skipped": result.skipped, "seed": result.seed,
                    "target": result.target.to_json() if result.target else None,
                    "pareto_size": len(result.pareto)})
        return 0
    print(f"trials   {result.trials} in {result.out_dir} ({result.seconds:.0f} s)"
          + (f"; {result.skipped} candidates beyond the target not evaluated"
             if result.skipped else ""))
    if "device" in result.evaluator:
        print(f"scored   {result.evaluator.get('name')} on {result.evaluator['device']}"
              + (f" ({result.evaluator['supernet']} supernet)"
                 if result.evaluator.get("supernet") == "shipped" else ""))
    if result.target is not None:
        from mobile_nas.search.finalists import source_words

        described = result.target.describe(source_words(best["latency"]))
        print(f"target   {described.removeprefix('target ')}")
    if "arch" in best:
        flag = "feasible" if best["feasible"] else "NOT feasible (no trial met the targets)"
        if result.verification is not None and result.verification.chosen_arch:
            flag += ", measured within the target"
        print(f"best     {best['arch']}  [{flag}]")
        score = (f"{best['accuracy']:.4g} ({result.evaluator['name']} score)"
                 if str(result.evaluator.get("name", "")).startswith("zero-cost") else
                 f"{100 * best['accuracy']:.2f}%")
        print(f"         accuracy {score}  latency "
              f"{best['latency_ms']:.3f} ms  macs {best['macs'] / 1e6:.2f}M  params "
              f"{best['params'] / 1e3:.1f}k  reward {best['reward']:.4f}")
    if result.verification is not None:
        print(f"verified {result.verification.summary()}")
        predicted = best.get("predicted_best")
        if predicted and predicted["arch"] != best.get("arch"):
            print(f"         the search's own pick (predicted_best in best.json): "
                  f"{predicted['arch']}")
    print(f"pareto   {len(result.pareto)} non-dominated trials -> "
          f"{result.out_dir}/pareto.json, pareto.png; all trials -> trials.csv")
    return 0
