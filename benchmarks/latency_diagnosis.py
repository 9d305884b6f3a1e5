"""Why summed lone layers miss whole small networks, and which network model fits them.

For each space: N random networks (seed 1234) and every runtime layer they contain are
exported to ONNX and timed with onnxruntime (CPU, 1 thread, wall clock) in ONE interleaved
run (20 rounds x 5 runs), so the layers and the networks see the same machine; a second run
repeats it (the test-retest). On those times, in fractions of the first network (the
reference), the ratio of every other network to it is predicted by leave-one-out fits of:
the plain layer sum; ``overhead + scale * sum``; ``overhead + scale * sum + per_layer * count``
(the linear calibration of schema 2); and the per-op network model
(:mod:`mobile_nas.cost.latency.network_model`, what tables fit now). Every time is in the JSON.

    .venv/bin/python benchmarks/latency_diagnosis.py [--spaces fmnist28 nasnet nb201] [--n 50]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from _shared import machine_facts, result_path
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.cost.latency.export import export_arch_onnx, export_layer_onnx
from mobile_nas.cost.latency.measure import load_session
from mobile_nas.cost.latency.network_model import (
    apply_weights,
    fit_network_model,
    network_features,
)
from mobile_nas.cost.latency.runner import time_interleaved
from mobile_nas.space import get_space
from mobile_nas.space.layers import LayerKey

MODELS = ("plain sum", "overhead + scale x sum", "overhead + scale x sum + per-layer x count",
          "per-op network model")


def measure(space_name: str, n: int, seed: int) -> dict:
    """Layers and networks timed together, twice: their medians (ms) per run."""
    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    archs: dict[str, object] = {}
    while len(archs) < n + 1:
        a = space.sample(rng)
        archs.setdefault(a.to_string(), a)
    layers = {k.id: k for a in archs.values() for k in space.runtime_layers(a)}
    sessions = {f"net{i}": load_session(export_arch_onnx(a))
                for i, a in enumerate(archs.values())}
    sessions.update({f"L{kid}": load_session(export_layer_onnx(k))
                     for kid, k in layers.items()})
    runs = []
    for rep in range(2):
        t = time_interleaved(sessions, warmup=5, rounds=20, runs_per_round=5, seed=rep)
        runs.append({name: float(np.median(v)) for name, v in t.items()})
    return {"archs": list(archs), "layers": {str(i): [k.id for k in space.runtime_layers(a)]
                                             for i, a in enumerate(archs.values())},
            "times": runs, "load_avg": [round(x, 2) for x in os.getloadavg()]}


def evaluate(data: dict) -> dict:
    """Leave-one-out ratio errors (%) of every model in every run, and the test-retest."""
    n = len(data["archs"])
    out: dict = {"runs": []}
    for t in data["times"]:
        ref = t["net0"]
        y = np.array([t[f"net{i}"] for i in range(n)]) / ref
        per_layer = [[(LayerKey.from_id(k), t["L" + k] / ref) for k in data["layers"][str(i)]]
                     for i in range(n)]
        feats = [network_features(p) for p in per_layer]
        s = np.array([f["sum"] for f in feats])
        c = np.array([f["count"] for f in feats])
        preds = {"plain sum": s}
        for name, cols in ((MODELS[1], [s]), (MODELS[2], [s, c])):
            x = np.column_stack([np.ones(n), *cols])
            p = np.zeros(n)
            for j in range(n):
                keep = np.arange(n) != j
                coef, *_ = np.linalg.lstsq(x[keep] / y[keep, None], np.ones(n - 1), rcond=None)
                p[j] = x[j] @ coef
            preds[name] = p
        p = np.zeros(n)
        for j in range(n):
            keep = [i for i in range(n) if i != j]
            fit = fit_network_model([feats[i] for i in keep], y[keep])
            p[j] = apply_weights(fit.weights, feats[j])
        preds[MODELS[3]] = p
        row = {"sum_over_measured_median": float(np.median(s / y))}
        for name, pr in preds.items():
            err = np.abs((pr / pr[0]) / y - 1)[1:] * 100
            row[name] = {"ratio_mape": float(err.mean()), "within_5": float((err <= 5).mean()),
                         "within_10": float((err <= 10).mean())}
        out["runs"].append(row)
    a, b = data["times"]
    ratios = [(a[f"net{i}"] / a["net0"]) / (b[f"net{i}"] / b["net0"]) for i in range(1, n)]
    out["retest_ratio_mape"] = float(np.mean(np.abs(np.array(ratios) - 1)) * 100)
    return out


def optimized_ops(arch) -> dict[str, int]:
    """Operator counts of the graph onnxruntime runs for ``arch`` (all optimizations, CPU):
    where the NCHWc layout starts and ends."""
    import collections
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "opt.onnx"
        load_session(export_arch_onnx(arch), optimized_model_path=optimized)
        graph = onnx.load(optimized).graph
    return dict(collections.Counter(node.op_type for node in graph.node))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spaces", nargs="+", default=["fmnist28", "nasnet", "nb201"])
    p.add_argument("--n", type=int, default=50)
    p.add_argument("--checks", type=int, default=3,
                   help="independent measurements (each: two interleaved runs) per space")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--out", default=str(result_path("latency_diagnosis")))
    args = p.parse_args()
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              **machine_facts("cpu"), "n": args.n, "seed": args.seed, "spaces": {}}
    from mobile_nas.space import load_arch

    result["fmnist28_mnasnet_ops"] = optimized_ops(load_arch("fmnist28_mnasnet", None))
    for check in range(args.checks):  # spaces interleaved, so drift touches each alike
        for name in args.spaces:
            data = measure(name, args.n, args.seed)
            result["spaces"].setdefault(name, []).append({**data, **evaluate(data)})
            print(name, check, result["spaces"][name][-1]["retest_ratio_mape"], flush=True)
    atomic_write_json(f"{args.out}.json", result)
    atomic_write_text(f"{args.out}.md", _markdown(result))


def _markdown(r: dict) -> str:
    lines = ["# Summed lone layers vs whole networks (benchmarks/latency_diagnosis.py)", "",
             f"{r['cpu']}, onnxruntime CPU, 1 thread, fp32. {r['date']}. Per space and check: "
             f"{r['n']} random networks (seed {r['seed']}) and their layers timed in one "
             "interleaved run, twice (runs a and b). Predicted vs measured ratio of each network "
             "to the first one, leave-one-out fits, in fractions of that reference. The "
             "test-retest column is the machine's own noise on the same ratios: where it is "
             "large, no model can be told from another. Generated by the script; every time is "
             "in `latency_diagnosis.json`.", "",
             "| space | check | test-retest of the ratios | layer sum / measured "
             "| load (1 min) | " + " | ".join(f"{m}: ratio MAPE, ±10% (a / b)" for m in MODELS)
             + " |", "|---|---|---|---|---|" + "---|" * len(MODELS)]
    for name, checks in r["spaces"].items():
        for i, c in enumerate(checks):
            cells = []
            for m in MODELS:
                a, b = c["runs"][0][m], c["runs"][1][m]
                cells.append(f"{a['ratio_mape']:.1f}% / {b['ratio_mape']:.1f}%, "
                             f"{a['within_10']:.0%} / {b['within_10']:.0%}")
            lines.append(f"| {name} | {i + 1} | {c['retest_ratio_mape']:.2f}% | "
                         f"{c['runs'][0]['sum_over_measured_median']:.2f} | "
                         f"{c['load_avg'][0]:.2f} | " + " | ".join(cells) + " |")
    ops = ", ".join(f"{n} {k}" for k, n in sorted(r["fmnist28_mnasnet_ops"].items()))
    lines += ["", "Why a lone layer is not a network's layer: the lone model pays an "
              "onnxruntime session call and, for NCHWc kernels, a layout reorder at both ends, "
              "where a network keeps the NCHWc layout between its layers (the graph onnxruntime "
              f"runs for fmnist28_mnasnet: {ops}); and each kind of operator shifts by its own "
              "factor, which the per-op model fits.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
