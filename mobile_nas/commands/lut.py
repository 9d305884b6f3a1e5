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
                               chunk=args.chunk, clock=args.clock)
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
    cal_archs = calibration_archs(table, space, n=max(args.n, len(archs)), seed=args.seed,
                                  include=archs)
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
              "calibration": cal.to_json() if cal else None}
    if args.json:
        print_json(record)
        return
    print(f"wrote {args.out}: {len(table)} layer keys of {table.space} "
          f"({md.get('build_seconds')} s of profiling) on {md.get('cpu')}, "
          f"{md.get('threads')} thread(s), {md.get('provider')}, clock {md.get('clock')}")
    if cal:
        print(f"calibration: {cal.overhead_ms:+.4f} ms + {cal.scale:.4f} x sum "
              f"{cal.per_layer_ms:+.4f} ms/layer; fit MAPE {cal.fit_mape:.2f}% on "
              f"{len(cal.archs)} networks")
    else:
        print("calibration: none (predictions are plain sums of layers)")
