"""``mobile-nas lut``: build, calibrate, bundle, import and check latency lookup tables."""

from __future__ import annotations

import argparse

from mobile_nas.commands._common import add_json_arg, positive_int, print_json


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
    p = lut.add_parser(
        "build", help="profile the layers of a space into a table",
        description="Export every layer key of the space (or only those of --arch "
                    "architectures) to ONNX and time them with onnxruntime, repeats "
                    "interleaved across keys. The table is written atomically after every "
                    "chunk of keys; --resume continues a killed build. Then fit the table's "
                    "calibration on --calibrate end-to-end measured networks. Example: "
                    "mobile-nas lut build --space fmnist28 --out my.json --resume")
    p.add_argument("--space", "-s", required=True, metavar="S", help="search space")
    p.add_argument("--out", "-o", required=True, metavar="T.json", help="table to write")
    p.add_argument("--arch", action="append", metavar="ARCH", default=[],
                   help="only the layers of this architecture (repeatable; arch string, "
                        "reference name or JSON file)")
    _add_timing_args(p)
    p.add_argument("--rounds", type=positive_int, default=10,
                   help="interleaved rounds per key (default 10)")
    p.add_argument("--runs-per-round", type=positive_int, default=3,
                   help="inferences per key and round (default 3)")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs per key (default 5)")
    p.add_argument("--statistic", choices=("median", "min"), default="median",
                   help="what the table predicts with: median (default) or min, the fastest "
                        "of the timed runs (far steadier on a busy shared machine)")
    p.add_argument("--chunk", type=positive_int, default=32,
                   help="keys timed together and saved together (default 32)")
    p.add_argument("--calibrate", type=int, default=8, metavar="N",
                   help="fit the calibration on N end-to-end measured networks (default 8; "
                        "0 = none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the calibration samples")
    p.add_argument("--resume", action="store_true",
                   help="keep the entries already in --out and time only the others")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_json_arg(p)
    p.set_defaults(handler=_build)


def _register_calibrate(lut: argparse._SubParsersAction) -> None:
    p = lut.add_parser(
        "calibrate", help="refit a table's calibration on measured networks",
        description="Measure N networks the table covers end to end (with the table's "
                    "threads, provider and clock) and store the fitted overhead/scale.")
    p.add_argument("--table", "-t", required=True, metavar="T.json")
    p.add_argument("--space", "-s", metavar="S", help="search space (default: the table's)")
    p.add_argument("--n", type=positive_int, default=8, help="networks (default 8)")
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
                    "--space fmnist28 --arch mobilenet_v2 --out bundle.zip")
    p.add_argument("--space", "-s", required=True, metavar="S")
    p.add_argument("--out", "-o", required=True, metavar="bundle.zip")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH",
                   help="only the layers of this architecture (repeatable)")
    p.add_argument("--calibrate", type=int, default=8, metavar="N",
                   help="whole networks to include for calibration (default 8)")
    p.add_argument("--rounds", type=positive_int, default=10)
    p.add_argument("--runs-per-round", type=positive_int, default=3)
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
                    "manifest (hashes, every key present, positive finite times) and write a "
                    "table with the device's metadata; whole networks in the bundle fit its "
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
        description="Export the reference architectures of the space and N random ones the "
                    "table covers, measure them end to end (interleaved, with the table's "
                    "threads, provider and clock) and report mean absolute percentage error, "
                    "the share within 5%% and 10%%, Spearman and Kendall rank correlation, and "
                    "a scatter plot PNG. Example: mobile-nas lut check --table "
                    "latency_tables/fmnist28.json --n 20")
    p.add_argument("--table", "-t", required=True, metavar="T.json")
    p.add_argument("--space", "-s", metavar="S", help="search space (default: the table's)")
    p.add_argument("--n", type=int, default=20, help="random architectures (default 20)")
    p.add_argument("--arch", action="append", default=[], metavar="ARCH",
                   help="also check this architecture (repeatable; arch string, reference "
                        "name or JSON file), even one the table calibrated on, as for a "
                        "table built with --arch")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rounds", type=positive_int, default=10,
                   help="interleaved measurement rounds (default 10)")
    p.add_argument("--noise", action="store_true",
                   help="measure every model twice to report the noise floor")
    p.add_argument("--plot", metavar="PNG", default="lut_check.png",
                   help="scatter plot to write (default lut_check.png; '' for none)")
    p.add_argument("--no-progress", action="store_true")
    add_json_arg(p)
    p.set_defaults(handler=_check)


def _load_archs(specs: list[str], space: str):
    from mobile_nas.space import load_arch

    archs = [load_arch(s, space) for s in specs]
    wrong = [a.to_string() for a in archs if a.space != space]
    if wrong:
        from mobile_nas.errors import ArchError

        raise ArchError(f"architecture {wrong[0]!r} is not in space {space!r}")
    return archs


def _build(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from mobile_nas.cost.latency.calibrate import calibrate_table, calibration_archs
    from mobile_nas.cost.latency.profiler import ProfileSettings, build_table
    from mobile_nas.errors import MobileNasError
    from mobile_nas.space import get_space

    space = get_space(args.space)
    if args.clock == "cpu" and args.threads != 1:
        raise MobileNasError(f"--clock cpu needs --threads 1, not {args.threads}")
    if args.warmup < 0 or args.calibrate < 0:
        raise MobileNasError("--warmup and --calibrate must be >= 0")
    archs = _load_archs(args.arch, space.name)
    keys = (sorted({k for a in archs for k in space.layers(a)}) if archs
            else space.enumerate_layers())
    settings = ProfileSettings(threads=args.threads, provider=args.provider,
                               opt_level=args.opt_level, warmup=args.warmup,
                               rounds=args.rounds, runs_per_round=args.runs_per_round,
                               chunk=args.chunk, clock=args.clock,
                               statistic=args.statistic)
    before = None
    if args.resume and Path(args.out).exists():
        from mobile_nas.cost.latency import LatencyTable

        before = len(LatencyTable.load(args.out))
    table = build_table(space.name, keys, args.out, settings=settings, resume=args.resume,
                        restricted_to=[a.to_string() for a in archs] or None,
                        progress=not args.no_progress)
    grew = before is None or len(table) > before
    if args.calibrate and (grew or table.calibration is None):
        cal_archs = calibration_archs(table, space, n=args.calibrate, seed=args.seed,
                                      include=archs)
        if not args.no_progress:
            print(f"calibrating on {len(cal_archs)} end-to-end measured networks",
                  file=sys.stderr)
        table = calibrate_table(table, cal_archs, progress=not args.no_progress)
        table.save(args.out)
    _print_table_summary(args, table)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from mobile_nas.cost.latency import LatencyTable
    from mobile_nas.cost.latency.calibrate import calibrate_table, calibration_archs
    from mobile_nas.space import get_space

    table = LatencyTable.load(args.table)
    space = get_space(args.space or table.space)
    archs = _load_archs(args.arch, space.name)
    known = [*(table.calibration.archs if table.calibration else ()),
             *(table.metadata.get("restricted_to_archs") or ())]
    candidates = archs + [a for a in _load_archs(known, space.name) if a not in archs]
    cal_archs = calibration_archs(table, space, n=max(args.n, len(archs)), seed=args.seed,
                                  include=candidates)
    table = calibrate_table(table, cal_archs, progress=not args.json)
    table.save(args.table)
    args.out = args.table
    _print_table_summary(args, table)
    return 0


def _print_table_summary(args: argparse.Namespace, table) -> None:
    md = table.metadata
    cal = table.calibration
    record = {"table": str(args.out), "space": table.space, "num_keys": len(table),
              "build_seconds": md.get("build_seconds"), "device": md.get("device"),
              "cpu": md.get("cpu"), "threads": md.get("threads"),
              "provider": md.get("provider"), "clock": md.get("clock"),
              "statistic": table.statistic,
              "calibration": cal.to_json() if cal else None}
    if args.json:
        print_json(record)
        return
    print(f"wrote {args.out}: {len(table)} layer keys of {table.space} "
          f"({md.get('build_seconds')} s of profiling) on {md.get('cpu')}, "
          f"{md.get('threads')} thread(s), {md.get('provider')}, clock {md.get('clock')}, "
          f"statistic {table.statistic}")
    if cal:
        print(f"calibration: {cal.overhead_ms:+.4f} ms + {cal.scale:.4f} x sum "
              f"{cal.per_layer_ms:+.4f} ms/layer; fit MAPE {cal.fit_mape:.2f}% on "
              f"{len(cal.archs)} networks")
    else:
        print("calibration: none (predictions are plain sums of layers)")


def _bundle(args: argparse.Namespace) -> int:
    import os

    from mobile_nas.cost.latency.bundle import make_bundle
    from mobile_nas.space import get_space

    space = get_space(args.space)
    archs = _load_archs(args.arch, space.name)
    keys = (sorted({k for a in archs for k in space.layers(a)}) if archs
            else space.enumerate_layers())
    cal = list(archs[:args.calibrate])
    if not archs:
        import numpy as np

        rng = np.random.default_rng(args.seed)
        cal = [space.sample(rng) for _ in range(max(args.calibrate, 0))]
    manifest = make_bundle(space, keys, args.out, archs=cal, rounds=args.rounds,
                           runs_per_round=args.runs_per_round, clock=args.clock,
                           statistic=args.statistic, progress=not args.no_progress)
    record = {"bundle": args.out, "space": space.name, "layer_models": len(keys),
              "arch_models": len(cal), "bytes": os.path.getsize(args.out),
              "manifest_models": len(manifest["models"])}
    if args.json:
        print_json(record)
    else:
        print(f"wrote {args.out}: {len(keys)} layer models + {len(cal)} networks "
              f"({record['bytes'] / 1e6:.1f} MB). On the device: unzip or pass the zip to "
              f"'python run_lut.py {os.path.basename(args.out)} --out results.json', then "
              f"'mobile-nas lut import results.json --bundle {args.out} --out T.json'")
    return 0


def _import(args: argparse.Namespace) -> int:
    import json

    from mobile_nas.cost.latency.bundle import import_results, perf_text_to_results
    from mobile_nas.errors import MobileNasError

    data = None
    try:
        with open(args.results, "rb") as f:
            head = f.read(1)
    except OSError as exc:
        raise MobileNasError(f"cannot read {args.results}: {exc.strerror}") from None
    if head not in (b"{", b"[", b" ", b"\n", b""):
        if not args.bundle:
            raise MobileNasError(f"{args.results} is not JSON; text results from "
                                 f"onnxruntime_perf_test need --bundle")
        data = perf_text_to_results(args.results, args.bundle, device=args.device)
    table = import_results(args.results, bundle=args.bundle, data=data)
    table.save(args.out)
    md = table.metadata
    record = {"table": args.out, "space": table.space, "num_keys": len(table),
              "device": md.get("device"), "cpu": md.get("cpu"),
              "calibrated": table.calibration is not None}
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"wrote {args.out}: {len(table)} layer keys of {table.space} measured on "
              f"{md.get('device')} ({md.get('cpu')}); calibration "
              + (f"fitted on {len(table.calibration.archs)} networks"
                 if table.calibration else "none"))
    return 0


def _check(args: argparse.Namespace) -> int:
    from mobile_nas.cost.latency import LatencyTable
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
                        include=_load_archs(args.arch, space.name))
    if len(archs) < 2:
        hint = ("" if args.arch else "; name the ones to check with --arch (also those it "
                                     "calibrated on)")
        raise MobileNasError(f"table {args.table} covers fewer than 2 architectures to "
                             f"check{hint}")
    report = check_table(table, archs, rounds=args.rounds, noise=args.noise,
                         progress=not (args.no_progress or args.json))
    if args.plot:
        scatter_plot(report, args.plot, title=f"{table.space}: {len(archs)} networks, "
                     f"{table.metadata.get('threads')} thread(s), clock "
                     f"{table.metadata.get('clock', 'wall')}")
    if args.json:
        print_json({**report.to_json(), "table": args.table, "plot": args.plot or None})
        return 0
    for r in report.rows:
        print(f"{r.name:<13} predicted {r.predicted_ms:8.3f} ms  measured {r.measured_ms:8.3f} ms"
              f"  {r.error_pct:+6.1f}%")
    print(f"{len(report.rows)} networks: MAPE {report.mape:.2f}%, within 5% "
          f"{report.within_5:.0%}, within 10% {report.within_10:.0%}, Spearman "
          f"{report.spearman:.3f}, Kendall {report.kendall:.3f}")
    if report.noise_mape is not None:
        print(f"noise floor (two measurements of each model): MAPE {report.noise_mape:.2f}%, "
              f"within 5% {report.noise_within_5:.0%}")
    if args.plot:
        print(f"scatter plot: {args.plot}")
    return 0
