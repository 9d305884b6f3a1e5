"""``mobile-nas bench model.onnx``: latency distribution of any ONNX model in onnxruntime."""

from __future__ import annotations

import argparse
import os

from mobile_nas.commands._common import add_json_arg, positive_int, print_json
from mobile_nas.cost.latency.errors import LatencyTargetError
from mobile_nas.cost.latency.measure import load_session, measure_onnx_ms
from mobile_nas.cost.latency.relative import compare_model, parse_latency_target
from mobile_nas.cost.latency.runner import this_machine
from mobile_nas.cost.latency.statistic import LatencyStatistic
from mobile_nas.errors import MobileNasError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="time an ONNX model with onnxruntime (p50/p90/p99, mean, std)",
        description="Time batch-1 inferences of any ONNX model (ours or, e.g., a torchvision "
                    "classifier exported to ONNX) with onnxruntime on random inputs of its "
                    "input shapes (dynamic dimensions = 1). latency_ms is the median of the "
                    "runs (latency_statistic names it: the wall-clock median by default, the "
                    "statistic 'cost --table' predicts). Example: mobile-nas bench "
                    "model.onnx --threads 1 --runs 200 --json")
    p.add_argument("model", metavar="model.onnx")
    p.add_argument("--threads", type=positive_int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--runs", type=positive_int, default=100, help="timed runs (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    p.add_argument("--provider", default="CPUExecutionProvider",
                   help="onnxruntime execution provider (default CPUExecutionProvider)")
    p.add_argument("--opt-level", choices=("disable", "basic", "extended", "all"),
                   default="all", help="graph optimization level (default all)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall: elapsed time (default); cpu: the timing thread's CPU time")
    p.add_argument("--vs", metavar="REF|FxREF",
                   help="also time the model against a reference, interleaved in --repeats "
                        "separate runs, and report the ratio (what holds on a drifting "
                        "machine): a reference name (fmnist28_mnasnet), an ONNX file, or an "
                        "arch string with --space; FxREF (0.9xfmnist28_mnasnet) also says "
                        "whether the model is within F times the reference")
    p.add_argument("--space", metavar="S", help="space of an arch string given to --vs")
    p.add_argument("--repeats", type=positive_int, default=3,
                   help="separate interleaved runs for --vs (default 3)")
    add_json_arg(p)
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    if args.warmup < 0:
        raise MobileNasError(f"--warmup must be >= 0, got {args.warmup}")
    timing = measure_onnx_ms(args.model, threads=args.threads, provider=args.provider,
                             warmup=args.warmup, runs=args.runs, opt_level=args.opt_level,
                             clock=args.clock)
    session = load_session(args.model, threads=args.threads, provider=args.provider)
    inputs = [{"name": i.name, "shape": list(i.shape), "type": i.type}
              for i in session.get_inputs()]
    statistic = LatencyStatistic(args.clock, "median")
    record = {"model": args.model, "latency_ms": statistic.of(timing),
              "latency_statistic": statistic.name, **timing.percentiles(),
              "warmup": args.warmup, "threads": timing.threads, "provider": args.provider,
              "opt_level": args.opt_level, "clock": args.clock, "inputs": inputs,
              "machine": this_machine().to_json("cpu", "cpu_count", "os", "onnxruntime")}
    vs = None
    if args.vs:
        try:
            vs = compare_model(args.model, parse_latency_target(args.vs),
                               space_name=args.space, repeats=args.repeats,
                               threads=args.threads, provider=args.provider,
                               opt_level=args.opt_level)
        except LatencyTargetError as exc:
            raise MobileNasError(exc.worded("--vs")) from None
        record["vs"] = vs.to_json()
    if args.json:
        print_json(record)
        return 0
    print(f"{args.model}: {timing.n} runs after {args.warmup} warm-up, "
          f"{timing.threads} thread(s), {args.provider}, clock {args.clock}")
    print(f"latency {record['latency_ms']:.3f} ms ({statistic.name}, the statistic 'cost' "
          f"predicts)")
    print(f"p50 {timing.median_ms:.3f} ms  p90 {timing.p90_ms:.3f} ms  p99 {timing.p99_ms:.3f} ms  "
          f"mean {timing.mean_ms:.3f} ± {timing.std_ms:.3f} ms")
    if vs is not None:
        target = ("" if args.vs == vs.reference else
                  f"; target {vs.target_factor:g}x: "
                  f"{'within by more than the noise' if vs.within_target else 'not within'}")
        print(f"vs {vs.reference}: {vs.ratio:.3f}x (runs "
              + ", ".join(f"{r:.3f}" for r in vs.ratios)
              + f"; noise {vs.noise_pct:.2f}%), {vs.model_ms:.3f} ms vs {vs.reference_ms:.3f} "
              f"ms in the same runs{target}")
    m = record["machine"]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {m['cpu']}, {m['cpu_count']} cores, {m['os']}, "
          f"onnxruntime {m['onnxruntime']}; load average {load:.2f}")
    return 0
