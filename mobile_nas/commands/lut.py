"""``mobile-nas lut``: build, calibrate, bundle, import and check latency lookup tables."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mobile_nas.commands._common import add_json_arg, positive_int, print_json
from mobile_nas.cost.latency.settings import DEFAULTS

if TYPE_CHECKING:
    from mobile_nas.space.architecture import Architecture


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lut", help="latency lookup tables: build, calibrate, bundle, import, check",
        description="Per-layer latency lookup tables. Each layer key of a space is exported to "
                    "ONNX (opset 17) and timed with onnxruntime; the table predicts network "
                    "latency. See latency_tables/README.md.")
    lut = p.add_subparsers(dest="lut_command", metavar="SUBCOMMAND", required=True)
    _register_build(lut)
    _register_calibrate(lut)
    _register_bundle(lut)
    _register_import(lut)
    _register_check(lut)
    _register_info(lut)


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


def _register_build(lut: argparse._SubParsersAction) -> None:
    from mobile_nas.cost.latency.calibrate import (
        DEFAULT_FIT_NETWORKS,
        DEFAULT_HELD_OUT,
        MIN_FIT_NETWORKS,
        MIN_HELD_OUT,
    )
    from mobile_nas.cost.latency.settings import BUILDABLE_PRECISIONS

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
    p.add_argument("--resume", action="store_true",
                   help="keep the entries already in --out and time only the others")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_arg(p)
    p.set_defaults(handler=_build)


def _register_calibrate(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "calibrate", help="refit a table's calibration on measured networks",
        description="Measure networks the table covers end to end (wall-clock median, with "
                    "the table's threads and provider), fit the calibration on N of them, "
                    "check it on --held-out others, and store both in the table.")
    p.add_argument("--table", "-t", required=True, metavar="T.json")
    p.add_argument("--space", "-s", metavar="S", help="search space (default: the table's)")
    from mobile_nas.cost.latency.calibrate import DEFAULT_FIT_NETWORKS, DEFAULT_HELD_OUT

    p.add_argument("--n", type=positive_int, default=None,
                   help=f"networks to fit on (default: three per weight of the space's "
                        f"network model, at least {DEFAULT_FIT_NETWORKS}; at least 3; 12 or "
                        f"more fit the per-op network model)")
    p.add_argument("--held-out", type=positive_int, default=DEFAULT_HELD_OUT,
                   help=f"networks to check on (default {DEFAULT_HELD_OUT}, at least 2)")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH",
                   help="calibrate on this architecture first (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    add_json_arg(p)
    p.set_defaults(handler=_calibrate)


def _register_bundle(lut: argparse._SubParsersAction) -> None:
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


def _register_import(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "import", help="turn a device's results.json into a latency table",
        description="Check results measured on a device by run_lut.py against their bundle "
                    "manifest (hashes, every key present, positive finite times; with --bundle, "
                    "results measured on another bundle are refused) and write a table with "
                    "the device's metadata (CPU, OS, onnxruntime version); whole networks in "
                    "the bundle fit its "
                    "calibration. Nothing from the bundle or the results is executed. A text "
                    "file of 'FILE MEDIAN_MS' lines from onnxruntime_perf_test is accepted "
                    "with --bundle.")
    p.add_argument("results", metavar="RESULTS.json")
    p.add_argument("--out", "-o", required=True, metavar="T.json")
    p.add_argument("--bundle", metavar="bundle.zip",
                   help="the bundle that was measured (checks the manifest hash)")
    p.add_argument("--device", default="unknown",
                   help="device name for onnxruntime_perf_test text results")
    add_json_arg(p)
    p.set_defaults(handler=_import)


def _register_check(lut: argparse._SubParsersAction) -> None:
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
    p.add_argument("--no-progress", action="store_true")
    add_json_arg(p)
    p.set_defaults(handler=_check)


def _register_info(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "info", help="what a table holds: coverage, machine, protocol, calibration",
        description="Print a table's coverage of its space, the machine and protocol that "
                    "timed it, what it predicts, its calibration and the entries searches "
                    "added on demand (search --profile-missing). Example: mobile-nas lut "
                    "info --table latency_tables/mobile224.json")
    p.add_argument("--table", "-t", required=True, metavar="T.json")
    add_json_arg(p)
    p.set_defaults(handler=_info)


def _counts(args: argparse.Namespace, space) -> tuple[int, int]:
    """(networks to fit, networks held out); (0, 0) for --calibrate 0."""
    from mobile_nas.cost.latency.calibrate import default_fit_networks
    from mobile_nas.errors import MobileNasError

    n_fit = default_fit_networks(space) if args.calibrate is None else args.calibrate
    if n_fit < 0 or args.held_out < 0:
        raise MobileNasError("--calibrate and --held-out must be >= 0")
    return (0, 0) if n_fit == 0 else (n_fit, args.held_out)


def _build(args: argparse.Namespace) -> int:
    from mobile_nas.cost.latency.build import build_lut, load_space_archs
    from mobile_nas.cost.latency.settings import ProfileSettings
    from mobile_nas.space import get_space

    space = get_space(args.space)
    n_fit, n_held = _counts(args, space)
    settings = ProfileSettings(threads=args.threads, provider=args.provider,
                               opt_level=args.opt_level, warmup=args.warmup,
                               rounds=args.rounds, runs_per_round=args.runs_per_round,
                               chunk=args.chunk, clock=args.clock, statistic=args.statistic,
                               precision=args.precision)
    result = build_lut(space, args.out, archs=load_space_archs(args.arch, space.name),
                       settings=settings, n_fit=n_fit, n_held_out=n_held, seed=args.seed,
                       resume=args.resume, progress=not args.no_progress)
    _print_result(result, args.json)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from mobile_nas.cost.latency.build import load_space_archs, recalibrate_lut
    from mobile_nas.cost.latency.calibrate import default_fit_networks
    from mobile_nas.cost.latency.table import LatencyTable
    from mobile_nas.space import get_space

    space = get_space(args.space or LatencyTable.load(args.table).space)
    result = recalibrate_lut(args.table, space=space,
                             include=load_space_archs(args.arch, space.name),
                             n_fit=default_fit_networks(space) if args.n is None else args.n,
                             n_held_out=args.held_out, seed=args.seed, progress=not args.json)
    _print_result(result, args.json)
    return 0


def _print_result(result, as_json: bool) -> None:
    if as_json:
        print_json(result.to_json())
        return
    table, md, cal = result.table, result.table.metadata, result.table.calibration
    print(f"wrote {result.path}: {len(table)} layer keys of {table.space} "
          f"({md.get('build_seconds')} s of profiling) on {md.get('cpu')}, "
          f"{md.get('threads')} thread(s), {md.get('provider')}, {table.precision}, layers "
          f"timed as the {table.layer_statistic.name}")
    if result.sampled:
        print(f"added the layers of {len(result.sampled)} random networks of the space "
              f"(seed {md['calibration_sample']['seed']}) to calibrate on")
    sentinel = md.get("sentinel")
    if sentinel and sentinel.get("runs"):
        run = sentinel["runs"][-1]
        events = [e for e in sentinel.get("events", []) if e["run"] == len(sentinel["runs"]) - 1]
        unresolved = sum(not e["resolved"] for e in events)
        print(f"sentinel: baseline {run['baseline_ms']:.4f} ms, noise floor "
              f"{run['noise_floor_pct']:.1f}%; {len(events)} of {run['chunks']} chunks "
              f"re-timed after a jump" + (f", {unresolved} still disturbed (kept the "
                                          f"nearest attempt)" if unresolved else "")
              + (" (metadata.sentinel.events)" if events else ""))
    if cal is None:
        print(f"calibration: none; predictions are {table.predicts}, with no held-out check")
        return
    if cal.weights is not None:
        unit = (f"as a fraction of the anchor ({cal.anchor_ms:.4f} ms when calibrated)"
                if cal.relative else "in ms")
        retest = "" if cal.retest_pct is None else \
            f"; the calibration run's repeats agreed within {cal.retest_pct:.2f}%"
        print(f"calibration: predicts the {cal.target.name} {unit}: per-op network model, "
              f"{cal.coefficients} weights fitted on {len(cal.archs)} networks (in-sample MAPE "
              f"{cal.fit_mape:.2f}%, leave-one-out {cal.loo_mape:.2f}%{retest})"
              + ("" if result.calibrated else " (kept)"))
    else:
        print(f"calibration: predicts the {cal.target.name}: {cal.overhead_ms:+.4f} ms + "
              f"{cal.scale:.4f} x sum {cal.per_layer_ms:+.4f} ms/layer, fitted on "
              f"{len(cal.archs)} networks ({cal.coefficients} coefficient(s), in-sample MAPE "
              f"{cal.fit_mape:.2f}%)" + ("" if result.calibrated else " (kept)"))
    if cal.held_out is not None:
        print(cal.held_out.summary())


def _bundle(args: argparse.Namespace) -> int:
    import os

    from mobile_nas.cost.latency.build import layer_keys, load_space_archs
    from mobile_nas.cost.latency.bundle import make_bundle
    from mobile_nas.cost.latency.calibrate import plan_calibration
    from mobile_nas.space import get_space

    space = get_space(args.space)
    archs = load_space_archs(args.arch, space.name)
    n_fit, n_held = _counts(args, space)
    fit: tuple[Architecture, ...] = ()
    held: tuple[Architecture, ...] = ()
    sampled: tuple[Architecture, ...] = ()
    if n_fit:
        plan = plan_calibration(space, include=archs, n_fit=n_fit, n_held_out=n_held,
                                seed=args.seed, references=not archs)
        fit, held = plan.fit, plan.held_out
        sampled = plan.sampled if archs else ()
    keys = layer_keys(space, [*archs, *sampled])
    manifest = make_bundle(space, keys, args.out, archs=fit, held_out=held,
                           rounds=args.rounds, runs_per_round=args.runs_per_round,
                           clock=args.clock, statistic=args.statistic, seed=args.seed,
                           progress=not args.no_progress)
    record = {"bundle": args.out, "space": space.name, "layer_models": len(keys),
              "arch_models": len(fit) + len(held), "fit_models": len(fit),
              "held_out_models": len(held), "bytes": os.path.getsize(args.out),
              "manifest_models": len(manifest["models"])}
    if args.json:
        print_json(record)
    else:
        print(f"wrote {args.out}: {len(keys)} layer models + {len(fit)} networks to calibrate "
              f"on and {len(held)} to check it ({record['bytes'] / 1e6:.1f} MB). On the "
              f"device: 'python run_lut.py {os.path.basename(args.out)} --out results.json', "
              f"then 'mobile-nas lut import results.json --bundle {args.out} --out T.json'")
    return 0


def _import(args: argparse.Namespace) -> int:
    from mobile_nas.cost.latency.bundle import load_results

    table = load_results(args.results, bundle=args.bundle, device=args.device)
    table.save(args.out)
    md, cal = table.metadata, table.calibration
    record = {"table": args.out, "space": table.space, "num_keys": len(table),
              "device": md.get("device"), "cpu": md.get("cpu"),
              "onnxruntime": md.get("onnxruntime"), "calibrated": cal is not None,
              "predicts": table.predicts,
              "held_out_check": cal.held_out.to_json() if cal and cal.held_out else None,
              "calibration_skipped": md.get("calibration_skipped")}
    if args.json:
        print_json(record)
        return 0
    runtime = f", onnxruntime {md['onnxruntime']}" if md.get("onnxruntime") else ""
    print(f"wrote {args.out}: {len(table)} layer keys of {table.space} measured on "
          f"{md.get('device')} ({md.get('cpu')}{runtime}); predicts the {table.predicts}")
    if cal is None:
        print(f"calibration: none ({md.get('calibration_skipped') or 'no whole networks'})")
    else:
        print(f"calibration: fitted on {len(cal.archs)} networks (in-sample MAPE "
              f"{cal.fit_mape:.2f}%)")
        if cal.held_out is not None:
            print(cal.held_out.summary())
    return 0


def _check(args: argparse.Namespace) -> int:
    from mobile_nas.cost.latency import LatencyTable
    from mobile_nas.cost.latency.build import load_space_archs
    from mobile_nas.cost.latency.check import check_archs, check_table, scatter_plot
    from mobile_nas.errors import MobileNasError
    from mobile_nas.space import get_space

    table = LatencyTable.load(args.table)
    space = get_space(args.space or table.space)
    if space.name != table.space:
        raise MobileNasError(f"table {args.table} is for space {table.space!r}, "
                             f"not {space.name!r}")
    if args.n < 0:
        raise MobileNasError(f"--n must be >= 0, got {args.n}")
    archs = check_archs(table, space, n=args.n, seed=args.seed,
                        include=load_space_archs(args.arch, space.name))
    if len(archs) < 2:
        hint = ("" if args.arch else "; name the ones to check with --arch (also those it "
                                     "calibrated on)")
        raise MobileNasError(f"table {args.table} covers fewer than 2 architectures to "
                             f"check{hint}")
    from mobile_nas.cost.latency.ondemand import summary

    if summary(table) and not args.json:
        print(f"on demand: {summary(table)}")
    report = check_table(table, archs, rounds=args.rounds, repeats=args.repeats,
                         progress=not (args.no_progress or args.json), table_path=args.table)
    if args.plot:
        scatter_plot(report, args.plot, title=f"{table.space}: {len(archs)} networks, "
                     f"{table.metadata.get('threads')} thread(s), clock "
                     f"{table.metadata.get('clock', 'wall')}")
    if args.json:
        print_json({**report.to_json(), "table": args.table, "plot": args.plot or None})
        return 0
    ref = report.reference
    for r in report.rows:
        ratio = "" if r.ratio_error_pct is None else (
            f"  x{ref}: predicted {r.predicted_ratio:.3f} measured {r.measured_ratio:.3f} "
            f"{r.ratio_error_pct:+6.1f}%")
        print(f"{r.name:<13} predicted {r.predicted_ms:8.3f} ms  measured {r.measured_ms:8.3f} ms"
              f"  {r.error_pct:+6.1f}%{ratio}")
    if report.ratio_mape is not None:
        print(f"{len(report.rows)} networks, ratio to {ref} timed in the same runs (the "
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


def _info(args: argparse.Namespace) -> int:
    from mobile_nas.cost.latency import LatencyTable
    from mobile_nas.cost.latency.info import info_lines, table_info

    table = LatencyTable.load(args.table)
    info = table_info(table, args.table)
    if args.json:
        print_json(info)
    else:
        print("\n".join(info_lines(table, info)))
    return 0
