"""How far a latency table's ratios can be right on this machine, and how much of their error
one factor per run explains (issue 24; exploratory: times nothing).

Reads the committed rows of `latency_prediction.py` checks (each network's measured ratio to
the space's reference, timed interleaved; the v1-v5 checks measured the same 50 fmnist28
networks 15 times over two days) and the finalists that `search_vs_groundtruth.py` searches
timed against the reference. Three questions:

* **The measurement's own ceiling.** Predict each run's ratios by the mean of the other
  runs' measurements of the same network (leave-one-run-out; no table, the best any fixed
  predictor could do): how often is that within ±5% / ±10%? How much of the run-to-run
  movement is one direction shared by every network (first principal component)?
* **One factor per run.** Each check's table as built, its ratios rescaled by ``K`` probe
  networks drawn from the run's own networks (``mobile_nas.cost.latency.probe``: the reference
  placed at the median of predicted / measured over the probes), scored on the run's other
  networks; averaged over random probe draws.
* **Search finalists.** The networks searches pick, predicted by each given table against
  their measured ratios (timed by the searches themselves, at other times): the bias a
  search's selection adds.

    .venv/bin/python benchmarks/latency_probe.py \\
        --check benchmarks/results/latency_prediction_intel.json ... (v1-v5) \\
        --finalists benchmarks/data/search_vs_groundtruth/*.json \\
        --table shipped=latency_tables/fmnist28.json \\
        --table v5=benchmarks/results/latency_prediction_intel_v5/fmnist28_table.json \\
        --out benchmarks/results/latency_probe_intel
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from latency_tables_paired import score

from _shared import REPO
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.cost.latency import LatencyPredictor, LatencyTable
from mobile_nas.cost.latency.probe import rebased_reference_ms
from mobile_nas.space import REFERENCE_ARCHS, Architecture

SPACE = "fmnist28"
BARS = {"within_10": 0.95, "within_5": 0.80}


def _shown(path: str) -> str:
    p = Path(path).resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else path


def ceiling(checks: dict[str, dict]) -> dict:
    """Leave-one-run-out prediction of every run's ratios by the other runs' mean, over the
    networks every run measured; and the share of the run-by-network movement along its first
    principal direction."""
    runs = [(name, i, {r["arch"]: r["measured_ratio"] for r in run["rows"]})
            for name, c in checks.items() for i, run in enumerate(c["spaces"][SPACE]["runs"])]
    common = sorted(set.intersection(*(set(m) for _, _, m in runs)))
    logs = np.log([[m[a] for a in common] for _, _, m in runs])
    centred = logs - logs.mean(axis=0)
    centred -= centred.mean(axis=1, keepdims=True)  # a run's common shift is not movement
    sv = np.linalg.svd(centred, compute_uv=False) ** 2
    per_run = []
    for i, (name, run, _) in enumerate(runs):
        others = np.delete(logs, i, axis=0).mean(axis=0)
        s = score(np.exp(others), np.exp(logs[i]))
        per_run.append({"check": name, "run": run, **s})
    return {"networks": len(common), "runs": len(runs),
            "network_sd_pct": float(np.median(np.std(logs, axis=0, ddof=1)) * 100),
            "first_direction_share": float(sv[0] / sv.sum()), "per_run": per_run}


def _ratios(pred: LatencyPredictor, archs: Sequence[str], ref: Architecture) -> np.ndarray:
    ref_ms = pred.predict(ref).total_ms
    return np.array([pred.predict(Architecture.from_string(a, SPACE)).total_ms / ref_ms
                     for a in archs])


def one_factor(checks: dict[str, dict], probes: Sequence[int], draws: int, seed: int
               ) -> list[dict]:
    """Per run: its table's ratios as built, and rescaled by ``k`` probes from the run's own
    networks (scored on the others), mean over ``draws`` probe draws."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, c in checks.items():
        s = c["spaces"][SPACE]
        pred = LatencyPredictor(LatencyTable.load(REPO / s["table"]))
        for i, run in enumerate(s["runs"]):
            ref = REFERENCE_ARCHS.get(run["reference"])
            archs = [r["arch"] for r in run["rows"] if r["arch"] != ref.arch]
            measured = np.array([r["measured_ratio"] for r in run["rows"]
                                 if r["arch"] != ref.arch])
            ratios = _ratios(pred, archs, Architecture.from_string(ref.arch, SPACE))
            row = {"check": name, "run": i, "table": s["table"],
                   "as_built": score(ratios, measured)}
            for k in probes:
                scores = []
                for _ in range(draws):
                    order = rng.permutation(len(archs))
                    probe, rest = order[:k], order[k:]
                    # ratios are predicted/ref_ms; rebasing divides by the probed reference
                    ref_units = rebased_reference_ms(ratios[probe], measured[probe])
                    scores.append(score(ratios[rest] / ref_units, measured[rest]))
                row[f"probes_{k}"] = {key: float(np.mean([x[key] for x in scores]))
                                      for key in scores[0]}
            rows.append(row)
    return rows


#: Bands of the measured ratio to the reference (a search with the target "1x the reference"
#: decides among networks in the first two).
BANDS = ((0.0, 0.85), (0.85, 1.0), (1.0, 1.2), (1.2, 1.5), (1.5, float("inf")))


def _band(x: float) -> int:
    return next(i for i, (lo, hi) in enumerate(BANDS) if lo <= x < hi)


def size_bands(checks: dict[str, dict]) -> list[dict]:
    """Per check: the mean signed error of its recorded predicted ratios by band of the
    measured ratio (random networks, all runs), and how many of its table's calibration
    networks fall in each band (by the table's predicted ratio)."""
    out = []
    for name, c in checks.items():
        s = c["spaces"][SPACE]
        pred = LatencyPredictor(LatencyTable.load(REPO / s["table"]))
        ref = REFERENCE_ARCHS.get(s["runs"][0]["reference"])
        cal = _ratios(pred, s["calibration"]["archs"], Architecture.from_string(ref.arch, SPACE))
        errors: list[list[float]] = [[] for _ in BANDS]
        for run in s["runs"]:
            for r in run["rows"]:
                if r["arch"] != ref.arch:
                    errors[_band(r["measured_ratio"])].append(
                        (r["predicted_ratio"] / r["measured_ratio"] - 1) * 100)
        out.append({"check": name, "probed": any(r.get("probe") for r in s["runs"]),
                    "calibration": [sum(_band(x) == i for x in cal) for i in range(len(BANDS))],
                    "n": [len(e) for e in errors],
                    "bias": [float(np.mean(e)) if e else None for e in errors]})
    return out


def finalists(files: Sequence[str], tables: dict[str, str]) -> dict:
    """Every finalist of the given searches, predicted by each table against its measured
    ratio to the reference."""
    items = []
    for f in files:
        v = json.loads(Path(f).read_text()).get("verified") or {}
        for c in v.get("candidates", []):
            items.append((v["reference_arch"], c["arch"], c["measured_ratio"]))
    out: dict = {"searches": len(files), "finalists": len(items), "tables": {}}
    for name, path in tables.items():
        pred = LatencyPredictor(LatencyTable.load(path))
        predicted = [float(_ratios(pred, [a], Architecture.from_string(r, SPACE))[0])
                     for r, a, _ in items]
        out["tables"][name] = {"path": _shown(path),
                               **score(predicted, [m for _, _, m in items])}
    return out


def _pct(x: float) -> str:
    return f"{x:.0%}"


def markdown(result: dict) -> str:
    c, probes = result["ceiling"], result["probes"]
    lines = [
        "# How far latency ratios can be right here, and one factor per run "
        "(benchmarks/latency_probe.py)", "",
        "Exploratory: times nothing; every figure is recomputed from committed files "
        "(the checks' per-network rows, the search runs' finalists, the tables), listed in "
        "`latency_probe_intel.json`. Generated by the script.", "",
        "## The measurement's own ceiling", "",
        f"{c['networks']} networks measured in all {c['runs']} check runs. A network's "
        f"ratio to the reference moves {c['network_sd_pct']:.1f}% between runs (median SD); "
        f"{c['first_direction_share']:.0%} of that movement (after each run's common shift) "
        f"is one direction shared by all networks. Each run predicted by the mean of the "
        f"other runs' measurements of the same networks — no table, the best a fixed "
        f"predictor could do:", "",
        "| check | run | MAPE | within ±5% | within ±10% |", "|---|---|---|---|---|"]
    for r in c["per_run"]:
        lines.append(f"| {r['check']} | {r['run'] + 1} | {r['mape']:.2f}% | "
                     f"{_pct(r['within_5'])} | {_pct(r['within_10'])} |")
    n10 = sum(r["within_10"] >= BARS["within_10"] for r in c["per_run"])
    n5 = sum(r["within_5"] >= BARS["within_5"] for r in c["per_run"])
    lines += ["", f"This ceiling meets ±10% for ≥ {BARS['within_10']:.0%} in {n10} of "
              f"{c['runs']} runs and ±5% for ≥ {BARS['within_5']:.0%} in {n5} of {c['runs']}.",
              "", "## One factor per run", "",
              "Each check's table as built, then its ratios rescaled by K probe networks "
              f"of the same run (mean over {result['draws']} random probe draws; scored on "
              "the run's other networks).", "",
              "| check | run | as built: MAPE | ±5% | ±10% | bias | "
              + " | ".join(f"{k} probes: MAPE | ±5% | ±10%" for k in probes) + " |",
              "|---|---|---|---|---|---|" + "---|---|---|" * len(probes)]
    for r in result["one_factor"]:
        a = r["as_built"]
        cells = [f"{r[f'probes_{k}']['mape']:.2f}% | {_pct(r[f'probes_{k}']['within_5'])} | "
                 f"{_pct(r[f'probes_{k}']['within_10'])}" for k in probes]
        lines.append(f"| {r['check']} | {r['run'] + 1} | {a['mape']:.2f}% | "
                     f"{_pct(a['within_5'])} | {_pct(a['within_10'])} | {a['bias']:+.1f}% | "
                     + " | ".join(cells) + " |")
    mean = {key: float(np.mean([r[key]["mape"] for r in result["one_factor"]]))
            for key in ["as_built"] + [f"probes_{k}" for k in probes]}
    better = {k: sum(r[f"probes_{k}"]["mape"] < r["as_built"]["mape"]
                     for r in result["one_factor"]) for k in probes}
    lines += ["", "Mean MAPE over runs: as built " + f"{mean['as_built']:.2f}%"
              + "".join(f", {k} probes {mean[f'probes_{k}']:.2f}% (lower in {better[k]} of "
                        f"{len(result['one_factor'])} runs)" for k in probes) + ".", ""]
    heads = [f"{lo:g}-{hi:g}x" if hi != float("inf") else f">= {lo:g}x" for lo, hi in BANDS]
    lines += ["## Error by size", "",
              "Mean signed error of each check's recorded predicted ratios (probed where the "
              "check probed) by band of the measured ratio to the reference, over its random "
              "networks and runs (n: rows); and how many of its table's 160 calibration "
              "networks the table puts in each band. A search for networks as fast as the "
              "reference decides in the first two bands, where the calibration has few.", "",
              "| check | probed | " + " | ".join(heads) + " | calibration networks by band |",
              "|---|---|" + "---|" * len(BANDS) + "---|"]
    for r in result["size_bands"]:
        cells = [f"{b:+.1f}% (n {n})" if b is not None else "-"
                 for b, n in zip(r["bias"], r["n"], strict=True)]
        lines.append(f"| {r['check']} | {'yes' if r['probed'] else 'no'} | "
                     + " | ".join(cells) + f" | {' / '.join(map(str, r['calibration']))} |")
    lines += [""]
    f = result["finalists"]
    lines += ["## Search finalists", "",
              f"{f['finalists']} finalists of {f['searches']} searches "
              "(`benchmarks/data/search_vs_groundtruth/`), measured against the reference by "
              "the searches themselves; predicted by:", "",
              "| table | MAPE | bias | within ±10% | within ±5% |", "|---|---|---|---|---|"]
    for name, t in f["tables"].items():
        lines.append(f"| {name} (`{t['path']}`) | {t['mape']:.2f}% | {t['bias']:+.1f}% | "
                     f"{_pct(t['within_10'])} | {_pct(t['within_5'])} |")
    lines += ["", "The bias column is a factor on every ratio: on the check runs above, that "
              "is what the probes remove; on finalists, probes were not timed by these "
              "searches, so the page does not claim it there.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="latency_probe", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="append", required=True,
                   help="a latency_prediction.py JSON with fmnist28 rows (repeatable)")
    p.add_argument("--band-check", action="append", default=[],
                   help="a further check for the error-by-size section only (repeatable)")
    p.add_argument("--finalists", nargs="+", default=[],
                   help="search_vs_groundtruth.py search records (their 'verified' blocks)")
    p.add_argument("--table", action="append", default=[], metavar="NAME=PATH",
                   help="a fmnist28 table to predict the finalists with (repeatable)")
    p.add_argument("--probes", type=int, nargs="+", default=[5, 10])
    p.add_argument("--draws", type=int, default=200, help="random probe draws per run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="prefix of the .json/.md written")
    args = p.parse_args(argv)
    tables = dict(t.split("=", 1) for t in args.table if "=" in t)
    if len(tables) != len(args.table):
        print("latency_probe: error: --table takes NAME=PATH, each name once", file=sys.stderr)
        return 2
    checks = {Path(c).stem: json.loads(Path(c).read_text()) for c in args.check}
    result = {"checks": [_shown(c) for c in args.check],
              "finalist_files": [_shown(f) for f in sorted(args.finalists)],
              "probes": args.probes, "draws": args.draws, "seed": args.seed,
              "ceiling": ceiling(checks),
              "one_factor": one_factor(checks, args.probes, args.draws, args.seed),
              "band_checks": [_shown(c) for c in args.band_check],
              "size_bands": size_bands(checks | {Path(c).stem: json.loads(Path(c).read_text())
                                                 for c in args.band_check}),
              "finalists": finalists(sorted(args.finalists), tables)}
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), result)
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
