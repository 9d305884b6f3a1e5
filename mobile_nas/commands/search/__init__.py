"""``mobile-nas search``: a latency/MAC-constrained architecture search, resumable.

The arguments are in :mod:`._args` (what is searched) and :mod:`._run_args` (how the search
runs); the work is one library call, :func:`mobile_nas.search.command.search_from_config`,
and this module prints what it returns.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mobile_nas.commands._common import print_json
from mobile_nas.commands.search._args import add_problem_args
from mobile_nas.commands.search._run_args import add_run_args
from mobile_nas.report.pareto import plot_run_pareto
from mobile_nas.search.command import search_from_config
from mobile_nas.search.finalists import source_words
from mobile_nas.search.runner import SearchConfig

if TYPE_CHECKING:
    from mobile_nas.search.runner import SearchResult


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
    add_problem_args(p)
    add_run_args(p)
    p.set_defaults(handler=_search)


def _search(args: argparse.Namespace) -> int:
    config = SearchConfig(
        space=args.space, strategy=args.strategy, trials=args.trials, out_dir=args.out,
        dataset=args.dataset, data_dir=args.data_dir, val_size=args.val_size,
        latency_target_ms=args.latency_target_ms, latency_target=args.latency_target,
        macs_target=args.macs_target, verify_top=args.verify_top,
        probe_reference=args.probe_reference,
        reward=args.reward, table=args.table, measure=args.measure,
        precision=args.precision, profile_missing=args.profile_missing,
        storage=args.storage,
        study_name=args.study_name, resume=args.resume, seed=args.seed,
        split_seed=args.split_seed, skip_margin=args.skip_margin, preset=args.preset,
        supernet=args.supernet, train_supernet=args.train_supernet, evaluator=args.evaluator,
        strategy_options=dict(args.strategy_options),
        threads=args.threads, device=args.device, amp=args.amp,
        progress=not args.no_progress)
    result = search_from_config(config, accuracy_csv=args.accuracy_csv,
                                latency_csv=args.latency_csv)
    if result is None:  # a torchrun rank other than 0: it trained the supernet
        return 0
    plot_run_pareto(result.out_dir)
    return _show(result, as_json=args.json)


def _show(result: SearchResult, *, as_json: bool) -> int:
    """Prints ``result``: a JSON document, or the summary lines."""
    best = result.best
    best = result.best
    if as_json:
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
