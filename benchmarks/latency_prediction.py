"""Latency prediction accuracy of the shipped tables, on the relative protocol.

For each space: the space's reference (its first registered reference architecture the
table covers; the table's anchor where the space has none) and N random architectures the
table did not calibrate on are exported whole to ONNX and timed with onnxruntime (the
table's threads, provider and precision), the reference interleaved among them, in
``--repeats`` separate interleaved runs inside one check (a network's measured ratio is the
median of its per-run ratios; their spread is the check's noise). The whole check is done
``--runs`` times, one after another, on the same networks. Judged, as issue #24 asks, on
the predicted vs measured **ratio to the reference**: within ±10% for >= 95% and within ±5%
for >= 80% of the networks in every run, and among pairs whose measured latencies differ by
less than 10% but more than the run's noise floor, the predicted order right for >= 85%.
Absolute milliseconds are recorded beside, with the load average. Every per-network number
is in the JSON.

    .venv/bin/python benchmarks/latency_prediction.py [--n 50] [--runs 3] \
        [--spaces fmnist28 nasnet nb201 mobile224]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

from _shared import REPO, machine_facts, result_path
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.cost.latency import LatencyTable, shipped_table_path
from mobile_nas.cost.latency.check import (
    check_archs,
    check_table,
    pair_order,
    scatter_plot,
    summarize_errors,
)
from mobile_nas.cost.latency.probe import DEFAULT_PROBE_SEED
from mobile_nas.space import get_space

TARGETS = {"ratio_within_10": 0.95, "ratio_within_5": 0.80, "pair_order": 0.85}
#: What is known of a space's remaining error (written with the first run of this protocol,
#: 2026-12-07; suspected causes are named so, not measured here).
NOTES = {
    "nasnet": "The space has no registered reference network, so its ratios are to the anchor "
              "(a pair of 3x3 convolutions on 16x32x32), a different kind of network whose "
              "drift between runs does not cancel that of the cell networks (suspected); a "
              "NASNet-cell reference would be the next thing to try.",
    "nb201": "The per-op model misses the cell's structure (suspected from the worst-predicted "
             "cells, which are pooling- and skip-heavy): a skip edge makes a node an alias of "
             "another, and onnxruntime then shares one pooling or one ReLU between edges that "
             "runtime_layers counts twice; Adds of conv-free nodes run unfused. Structural "
             "features (aliased nodes, unfused Adds) brought the leave-one-out error of a "
             "single-run diagnosis from 6.5% to 5.0% only.",
    "mobile224": "This restricted table was built in two runs: the calibration networks' layers "
                 "with the calibration, then the test networks' layers without refitting. The "
                 "test networks are predicted about 4% low in ms while the reference is about "
                 "2% high (suspected: entries of 224x224 layers timed in the second run sit on "
                 "another anchor timebase; the small anchor does not track large, memory-bound "
                 "layers). Re-timing some first-run entries in the second run, as on-demand "
                 "profiling does, would test it.",
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spaces", nargs="+", default=["fmnist28", "nasnet", "nb201", "mobile224"])
    p.add_argument("--n", type=int, default=50, help="random architectures per space")
    p.add_argument("--runs", type=int, default=3, help="separate checks of each space")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved timing runs inside one check")
    p.add_argument("--rounds", type=int, default=20, help="interleaved rounds of 5 runs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--probes", type=int, default=0, metavar="K",
                   help="also time K probe networks in every run and judge the ratios against "
                        "the reference as they place it (mobile_nas.cost.latency.probe, "
                        "search --probe-reference); the table's own ratios are recorded "
                        "beside (default 0: none)")
    p.add_argument("--probe-seed", type=int, default=DEFAULT_PROBE_SEED)
    p.add_argument("--out", default=str(result_path("latency_prediction")))
    p.add_argument("--from-json", action="store_true",
                   help="measure nothing: recompute every figure from the per-network rows "
                        "of OUT.json and rewrite OUT.json and OUT.md")
    p.add_argument("--table", action="append", default=[], metavar="SPACE=PATH",
                   help="check this table of SPACE instead of the shipped one (repeatable), "
                        "e.g. one `benchmarks/build_shipped_tables.sh` just built")
    args = p.parse_args()
    if args.from_json:
        result = recompute(json.loads(Path(f"{args.out}.json").read_text()))
        atomic_write_json(f"{args.out}.json", result)
        atomic_write_text(f"{args.out}.md", _markdown(result))
        return
    tables = dict(t.split("=", 1) for t in args.table if "=" in t)
    if len(tables) != len(args.table):
        p.error("--table takes SPACE=PATH")
    spaces = {}
    for name in args.spaces:
        path = Path(tables[name]).resolve() if name in tables else shipped_table_path(name)
        if path is None:
            raise SystemExit(f"no shipped table for {name}")
        table = LatencyTable.load(path)
        space = get_space(name)
        archs = check_archs(table, space, n=args.n, seed=args.seed, include_references=False)
        runs = []
        for run in range(args.runs):
            t0 = time.monotonic()
            report = check_table(table, archs, repeats=args.repeats, rounds=args.rounds,
                                 progress=True, probes=args.probes,
                                 probe_seed=args.probe_seed)
            runs.append({"run": run, "seconds": round(time.monotonic() - t0, 1),
                         "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "passes": _passes(report.to_json()), **report.to_json()})
            po = report.pair_order
            print(f"{name} run {run}: ratio to {report.reference} MAPE {report.ratio_mape:.2f}% "
                  f"±5% {report.ratio_within_5:.0%} ±10% {report.ratio_within_10:.0%}; pairs "
                  f"{po.correct}/{po.pairs}; ms MAPE {report.mape:.2f}%; noise "
                  f"{report.noise_mape:.2f}%; load {report.load_avg[0]:.2f}"
                  + (f"; probe x{report.probe.shift:.3f}" if report.probe else ""), flush=True)
        png = Path(f"{args.out}_{name}.png")
        md = table.metadata
        scatter_plot(report, png, title=f"{name}: {len(archs)} networks (last run), "
                     f"onnxruntime CPU, {md.get('threads')} thread")
        cal = table.calibration
        spaces[name] = {
            "table": _shown(path), "table_keys": len(table),
            "schema_relative": bool(cal and cal.relative),
            "table_build_seconds": md.get("build_seconds"), "table_date": md.get("date"),
            "table_restricted": bool(md.get("restricted_to_archs")),
            "calibration": cal.to_json() if cal else None,
            "n_archs": len(archs), "plot": png.name, "runs": runs,
            "meets_goal": all(r["passes"]["all"] for r in runs),
        }
    machine = machine_facts("cpu", "cpu_count", os=platform.platform())
    # schema 2 also names the model "lscpu_model" (lscpu's "Model name", /proc/cpuinfo's)
    machine |= {"lscpu_model": machine["cpu"],
                "note": "2-core shared CPU VM, nothing else of this project running"}
    result = {"schema_version": 2, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine, **machine_facts("onnxruntime"), "targets": TARGETS,
              "spaces": spaces}
    result = recompute(result)  # the figures exactly as --from-json gives them
    atomic_write_json(f"{args.out}.json", result)
    atomic_write_text(f"{args.out}.md", _markdown(result))


def recompute(result: dict) -> dict:
    """Every run's figures from its rows (predicted and measured ratios, ms) and its recorded
    noise: what anyone can recompute from the JSON alone. The pair-order floor is twice the
    run's noise (``check_table``'s rule)."""
    for s in result["spaces"].values():
        first_probe = (s["runs"][0].get("probe") or {}) if s["runs"] else {}
        for run in s["runs"]:
            ref = run["reference"]
            rows = [r for r in run["rows"] if r["name"] != ref]
            ratio = summarize_errors([r["predicted_ratio"] for r in rows],
                                     [r["measured_ratio"] for r in rows])
            ms = summarize_errors([r["predicted_ms"] for r in run["rows"]],
                                  [r["measured_ms"] for r in run["rows"]])
            po = pair_order([r["predicted_ratio"] for r in rows],
                            [r["measured_ratio"] for r in rows],
                            floor_pct=2 * run["noise_mape"])
            run.update(ratio_mape=ratio["mape"], ratio_within_5=ratio["within_5"],
                       ratio_within_10=ratio["within_10"], **ms,
                       pair_order={**asdict(po), "share": po.share})
            run["passes"] = _passes(run)
            if run.get("probe"):  # the same rows against the table's own reference prediction
                ref_ms = run["probe"]["reference_predicted_ms"]
                plain = [r["predicted_ms"] / ref_ms for r in rows]
                measured = [r["measured_ratio"] for r in rows]
                pr = summarize_errors(plain, measured)
                ppo = pair_order(plain, measured, floor_pct=2 * run["noise_mape"])
                run["without_probe"] = {
                    "ratio_mape": pr["mape"], "ratio_within_5": pr["within_5"],
                    "ratio_within_10": pr["within_10"],
                    "pair_order": {**asdict(ppo), "share": ppo.share}}
                run["without_probe"]["passes"] = _passes(run["without_probe"])
                # the first run's probe held over this run: a search probes once, then its
                # finalists are timed minutes later
                held = summarize_errors([r["predicted_ms"] / first_probe["reference_ms"]
                                         for r in rows], measured)
                run["first_run_probe"] = {"ratio_mape": held["mape"],
                                          "ratio_within_5": held["within_5"],
                                          "ratio_within_10": held["within_10"]}
        s["meets_goal"] = all(r["passes"]["all"] for r in s["runs"])
    return result


def _passes(report: dict) -> dict:
    po = report["pair_order"] or {}
    checks = {"ratio_within_10": report["ratio_within_10"] >= TARGETS["ratio_within_10"],
              "ratio_within_5": report["ratio_within_5"] >= TARGETS["ratio_within_5"],
              "pair_order": po.get("share") is not None
              and po["share"] >= TARGETS["pair_order"]}
    return {**checks, "all": all(checks.values())}


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it, else as given."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _markdown(r: dict) -> str:
    m, t = r["machine"], r["targets"]
    lines = [
        "# Latency prediction accuracy, relative protocol (benchmarks/latency_prediction.py)",
        "",
        f"Machine: {m['lscpu_model']} ({m['cpu_count']} cores), {m['os']}; {m['note']}. "
        f"onnxruntime {r['onnxruntime']}, CPUExecutionProvider, 1 thread, fp32, opset 17. "
        f"Measured {r['date']}. Generated by the script; every per-network number is in "
        f"`latency_prediction.json`.",
        "",
        f"Goal (issue #24): predicted vs measured ratio to the space's reference, timed in the "
        f"same interleaved runs, within ±10% for ≥ {t['ratio_within_10']:.0%} and within ±5% "
        f"for ≥ {t['ratio_within_5']:.0%} of the networks; among pairs within 10% of each "
        f"other and apart by more than the run's noise floor, the order right for ≥ "
        f"{t['pair_order']:.0%}; in every one of the runs.",
        "",
        "| space | reference | run | networks | ratio MAPE | ratio ±5% | ratio ±10% "
        "| pairs ordered right | noise | ms MAPE | ms ±10% | reference ms | load (1 min) "
        "| meets goal |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in r["spaces"].items():
        for run in s["runs"]:
            po = run["pair_order"] or {}
            share = po.get("share")
            lines.append(
                f"| {name} | {run['reference']} | {run['run'] + 1} | {s['n_archs']} | "
                f"{run['ratio_mape']:.2f}% | {run['ratio_within_5']:.0%} | "
                f"{run['ratio_within_10']:.0%} | "
                f"{po.get('correct', 0)}/{po.get('pairs', 0)}"
                f"{f' ({share:.0%})' if share is not None else ''} | "
                f"{run['noise_mape']:.2f}% (floor {po.get('floor_pct', 0):.1f}%) | "
                f"{run['mape']:.2f}% | {run['within_10']:.0%} | {run['reference_ms']:.4f} | "
                f"{run['load_avg'][0]:.2f} | {'yes' if run['passes']['all'] else 'no'} |")
    probed = [(name, run) for name, s in r["spaces"].items() for run in s["runs"]
              if run.get("probe")]
    if probed:
        lines += [
            "", "Ratios above are against the reference as the run's probe networks place it "
            "(`--probes`: the median over probes of predicted ms / measured ratio, "
            "`mobile_nas.cost.latency.probe`); the same rows against the table's own "
            "prediction of the reference, and (last column) against the reference as the "
            "first run's probes placed it (a search probes once, minutes before its finalists "
            "are timed):", "",
            "| space | run | probes | probe shift | probe spread | ratio MAPE | ratio ±5% "
            "| ratio ±10% | pairs ordered right | meets goal | ratio MAPE with run 1's probe |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, run in probed:
            w, pb = run["without_probe"], run["probe"]
            po = w["pair_order"]
            share = "" if po["share"] is None else f" ({po['share']:.0%})"
            lines.append(
                f"| {name} | {run['run'] + 1} | {len(pb['probes'])} | x{pb['shift']:.3f} | "
                f"{pb['spread_pct']:.1f}% | {w['ratio_mape']:.2f}% | "
                f"{w['ratio_within_5']:.0%} | {w['ratio_within_10']:.0%} | "
                f"{po['correct']}/{po['pairs']}{share} | "
                f"{'yes' if w['passes']['all'] else 'no'} | "
                f"{run['first_run_probe']['ratio_mape']:.2f}% |")
    lines += ["", "Tables:", ""]
    for name, s in r["spaces"].items():
        cal = s["calibration"] or {}
        held = cal.get("held_out") or {}
        form = ("per-op network model in fractions of the anchor" if s["schema_relative"]
                else "linear calibration in ms (schema 2, not rebuilt on the relative "
                     "protocol)")
        lines.append(
            f"- {name}: `{s['table']}`, {s['table_keys']} keys"
            f"{' (restricted)' if s['table_restricted'] else ''}, built {s['table_date']}; "
            f"{form}, fitted on {len(cal.get('archs', []))} networks"
            + (f" (leave-one-out {cal['loo_mape']:.2f}%)" if cal.get("loo_mape") is not None
               else "")
            + (f", its held-out check in the build run: MAPE {held['mape']:.2f}%, "
               f"{held['within_5']:.0%} within ±5%, {held['within_10']:.0%} within ±10%"
               if held else "")
            + f". Meets the goal in every run: {'yes' if s['meets_goal'] else 'no'}."
            + (f" {NOTES[name]}" if not s["meets_goal"] and name in NOTES else ""))
    lines += [
        "",
        "Noise: the mean distance of one timing run's ratio from the median of the check's "
        "runs; the pair order counts pairs apart by more than twice that (the noise of a "
        "difference). `--from-json` recomputes every figure here from the per-network rows "
        "of the JSON. The test networks are drawn with the same seed in every run and are "
        "never calibration networks.",
        "",
        "Scatter plots (last run): " + ", ".join(s["plot"] for s in r["spaces"].values()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
