"""``mobile-nas lut check``: a table's predicted vs measured end-to-end latency."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, non_negative_int, positive_int, print_json
from mobile_nas.cost.latency.check import check_lut


def register(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "check", help="predicted vs measured end-to-end latency",
        description="Export N random architectures the table covers (and the space's "
                    "references), time them end to end with the space's first reference "
                    "(by name; the table's anchor where the space has none) interleaved "
                    "among them in --repeats separate runs (wall clock, the table's threads "
                    "and provider), and report predicted vs measured ratio to that "
                    "reference (the protocol's measure: MAPE, share within 5% and 10%), "
                    "how many close pairs (within 10%, apart by more than the runs' noise) "
                    "the prediction orders right, the same figures in ms with the load "
                    "average, and a scatter plot PNG. Example: mobile-nas lut check --table "
                    "latency_tables/fmnist28.json --n 20")
    p.add_argument("--table", "-t", required=True, metavar="T.json")
    p.add_argument("--space", "-s", metavar="S", help="search space (default: the table's)")
    p.add_argument("--n", type=int, default=20, help="random architectures (default 20)")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH",
                   help="also check this architecture (repeatable; arch string, reference "
                        "name or JSON file), even one the table calibrated on, as for a "
                        "table built with --arch")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounds", type=positive_int, default=20,
                   help="interleaved measurement rounds of 5 runs each (default 20)")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="separate interleaved runs; each network's ratio to the reference is "
                        "the median over them and their spread is the noise (default 3)")
    p.add_argument("--plot", metavar="PNG", default="lut_check.png",
                   help="scatter plot to write (default lut_check.png; '' for none)")
    p.add_argument("--probes", type=non_negative_int, default=0, metavar="K",
                   help="also time K probe networks in the same runs and take the predicted "
                        "ratios against the reference where they place it, as a search does "
                        "(search --probe-reference, default 10 there); default 0: the table's "
                        "own prediction of the reference")
    p.add_argument("--no-progress", action="store_true")
    add_json_arg(p)
    p.set_defaults(handler=_check)


def _check(args: argparse.Namespace) -> int:
    result = check_lut(args.table, space=args.space, n=args.n, seed=args.seed,
                       include=args.arch, rounds=args.rounds, repeats=args.repeats,
                       plot=args.plot or None, progress=not (args.no_progress or args.json),
                       note=None if args.json else print, probes=args.probes)
    if args.json:
        print_json(result.to_json())
        return 0
    report = result.report
    ref = report.reference
    for r in report.rows:
        ratio = "" if r.ratio_error_pct is None else (
            f"  x{ref}: predicted {r.predicted_ratio:.3f} measured {r.measured_ratio:.3f} "
            f"{r.ratio_error_pct:+6.1f}%")
        print(f"{r.name:<13} predicted {r.predicted_ms:8.3f} ms  measured {r.measured_ms:8.3f} ms"
              f"  {r.error_pct:+6.1f}%{ratio}")
    if report.probe is not None:
        print(report.probe.describe())
    if report.ratio_mape is not None:
        print(f"{len(report.rows)} networks, ratio to {ref}"
              f"{' (probed)' if report.probe else ''} timed in the same runs (the "
              f"protocol's measure): MAPE {report.ratio_mape:.2f}%, within 5% "
              f"{report.ratio_within_5:.0%}, within 10% {report.ratio_within_10:.0%}")
    if report.pair_order is not None and report.pair_order.pairs:
        po = report.pair_order
        print(f"pairs within {po.within_pct:.0f}% of each other and apart by more than the "
              f"noise ({po.floor_pct:.1f}%): {po.correct} of {po.pairs} ordered right "
              f"({po.share:.0%})")
    load = "" if report.load_avg is None else f", load average {report.load_avg[0]:.2f}"
    print(f"milliseconds ({report.statistic}; {ref} measured {report.reference_ms:.4f} ms"
          f"{load}): MAPE {report.mape:.2f}%, within 5% "
          f"{report.within_5:.0%}, within 10% {report.within_10:.0%}, Spearman "
          f"{report.spearman:.3f}, Kendall {report.kendall:.3f}")
    if report.noise_mape is not None:
        print(f"noise: the {args.repeats} runs' ratios were {report.noise_mape:.2f}% from their "
              f"median (mean)")
    if args.plot:
        print(f"scatter plot: {args.plot}")
    return 0
