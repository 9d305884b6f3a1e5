"""Where a table's per-network error comes from: the build or the model (issue 24; exploratory).

Tables built on the same machine with the same protocol predict the same networks with
errors that correlate only weakly (``latency_tables_paired_intel.md``). This script times
nothing. It re-predicts the committed rows of the check runs (each network's measured ratio
to the space's reference, timed interleaved) in several ways and scores each the same way:

* ``as built``: each table as it was built (its entries, its calibration);
* ``refit``: each table's entries, the network model refitted on its own calibration
  networks with the library's default fit (no measured lookup);
* ``pooled``: each table's entries, the network model fitted on the calibration networks of
  every given table together (each in its own anchor units);
* ``merged ...``: several tables as built, as the passes of one table (``lut merge``: the
  median of their predicted anchor fractions; of two, the mean); ``mean of ...``: the mean
  of every table's predicted fraction, for comparison.

If averaging independent builds cuts the error where refitting and pooling do not, the error
is each build's (entries timed and networks measured in one short pass), not the model's; a
table built from several independent passes is then the lever.

    .venv/bin/python benchmarks/latency_build_ensemble.py \\
        --check benchmarks/results/latency_prediction_intel.json \\
        --check benchmarks/results/latency_prediction_intel_v2.json \\
        --check benchmarks/results/latency_prediction_intel_v3.json \\
        --table v1=benchmarks/results/latency_prediction_intel/fmnist28_table.json \\
        --table v2=benchmarks/results/latency_prediction_intel_v2/fmnist28_table.json \\
        --table v3=benchmarks/results/latency_prediction_intel_v3/fmnist28_table.json \\
        --out benchmarks/results/latency_build_ensemble_intel
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Sequence

import numpy as np
from latency_tables_paired import rerun_main, score

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable
from mobile_nas.cost.latency.calibrate import layer_values
from mobile_nas.cost.latency.network_model import (
    FEATURE_SETS,
    apply_weights,
    fit_network_model,
)
from mobile_nas.space import REFERENCE_ARCHS, Architecture

SPACE = "fmnist28"
#: A way of predicting: architecture -> predicted latency (any unit; ratios are taken).
Predict = Callable[[Architecture], float]


def check_runs(checks: dict[str, dict]) -> list[dict]:
    """Every run of every check: its networks and their measured ratios to the reference."""
    runs = []
    for name, check in checks.items():
        for i, run in enumerate(check["spaces"][SPACE]["runs"]):
            runs.append({"check": name, "run": i, "reference": run["reference"],
                         "archs": [Architecture.from_string(r["arch"], SPACE)
                                   for r in run["rows"]],
                         "measured": [r["measured_ratio"] for r in run["rows"]]})
    return runs


def calibration_set(table: LatencyTable) -> tuple[list[Architecture], list[float]]:
    """A table's fitted calibration networks and their measurements in anchor units."""
    cal = table.calibration
    if cal is None or cal.anchor_ms is None or cal.weights is None:
        raise SystemExit("latency_build_ensemble: error: every table needs a relative network "
                         "model (built by lut build since 2026-12-07)")
    return ([Architecture.from_string(a, SPACE) for a in cal.archs],
            [m / cal.anchor_ms for m in cal.measured_ms])


def refitted(table: LatencyTable, sets: Sequence[tuple[list[Architecture], list[float]]]
             ) -> Predict:
    """``table``'s entries with the network model fitted on ``sets`` (the table's own
    feature set, the library's default ridge choice)."""
    assert table.calibration is not None
    features = FEATURE_SETS[table.calibration.features]

    def feats(a: Architecture) -> dict[str, float]:
        return features(layer_values(table, a, relative=True))

    archs = [a for s in sets for a in s[0]]
    measured = [m for s in sets for m in s[1]]
    weights = fit_network_model([feats(a) for a in archs], measured).weights
    return lambda a: apply_weights(weights, feats(a))


def ratio_predictions(predict: Predict, runs: list[dict]) -> list[np.ndarray]:
    """Per run, every network's predicted ratio to the run's reference."""
    out = []
    for run in runs:
        ref = Architecture.from_string(REFERENCE_ARCHS.get(run["reference"]).arch, SPACE)
        r = predict(ref)
        out.append(np.array([predict(a) / r for a in run["archs"]]))
    return out


def summarize(name: str, predicted: list[np.ndarray], runs: list[dict]) -> dict:
    """Per-run scores and their means over runs."""
    per_run = [score(p, run["measured"]) | {"check": run["check"], "run": run["run"]}
               for p, run in zip(predicted, runs, strict=True)]
    biases = [r["bias"] for r in per_run]
    return {"variant": name, "runs": per_run,
            "mape": float(np.mean([r["mape"] for r in per_run])),
            "abs_bias": float(np.mean(np.abs(biases))),
            "bias_min": float(min(biases)), "bias_max": float(max(biases)),
            "scatter": float(np.mean([r["scatter"] for r in per_run])),
            "within_10": float(np.mean([r["within_10"] for r in per_run])),
            "within_5": float(np.mean([r["within_5"] for r in per_run]))}


def evaluate(checks: dict[str, dict], tables: dict[str, LatencyTable]) -> list[dict]:
    runs = check_runs(checks)
    sets = {k: calibration_set(t) for k, t in tables.items()}
    built = {k: ratio_predictions(LatencyPredictor(t).predict_ms, runs)
             for k, t in tables.items()}
    rows = [summarize(f"{k} as built", v, runs) for k, v in built.items()]
    rows += [summarize(f"{k} refit", ratio_predictions(refitted(t, [sets[k]]), runs), runs)
             for k, t in tables.items()]
    rows += [summarize(f"{k} pooled", ratio_predictions(
        refitted(t, list(sets.values())), runs), runs) for k, t in tables.items()]
    for n in range(2, len(tables) + 1):
        for first, *more in itertools.combinations(tables, n):
            merged = tables[first].with_passes([tables[m] for m in more])
            rows.append(summarize(f"merged {', '.join([first, *more])}", ratio_predictions(
                LatencyPredictor(merged).predict_ms, runs), runs))
    if len(tables) > 2:  # what the median of merged passes gives up, or saves, against the mean
        alone = [LatencyPredictor(t) for t in tables.values()]
        rows.append(summarize(f"mean of {', '.join(tables)}", ratio_predictions(
            lambda a: float(np.mean([p.predict(a).anchor_fraction or np.nan for p in alone])),
            runs), runs))
    return rows


def markdown(rows: Sequence[dict], sources: dict[str, str], tables: dict[str, str]) -> str:
    n_runs = len(rows[0]["runs"])
    lines = ["# Build or model: where a table's per-network error comes from (issue 24, "
             "exploratory)", "",
             "Generated by `benchmarks/latency_build_ensemble.py`: no timing; every variant "
             "re-predicts the committed rows of the check runs and is scored on each run's "
             "measured ratios to the reference. Exploratory: written after the checks had been "
             "seen; a protocol that adopts a variant needs a new pre-registered check.", "",
             "Checks: " + ", ".join(f"`{k}` = `{v}`" for k, v in sources.items()) + ".",
             "Tables: " + ", ".join(f"`{k}` = `{v}`" for k, v in tables.items()) + ".", "",
             f"Means over the {n_runs} check runs of: ratio MAPE, |bias| (a run's mean signed "
             "error: what the reference's own prediction error shifts every ratio by), "
             "scatter (mean absolute error around the run's bias), share within ±10% and ±5%; "
             "and the range of the runs' biases (all %).", "",
             "| variant | MAPE | abs bias | bias range | scatter | ±10% | ±5% |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['mape']:.2f} | {r['abs_bias']:.2f} | "
              f"{r['bias_min']:+.1f}..{r['bias_max']:+.1f} | {r['scatter']:.2f} | "
              f"{r['within_10']:.0%} | {r['within_5']:.0%} |" for r in rows]
    def mean_of(suffix: str, key: str) -> float:
        return float(np.mean([r[key] for r in rows if r["variant"].endswith(suffix)]))

    every = next(r for r in rows if r["variant"] == f"merged {', '.join(tables)}")
    lines += ["", f"Reading: one build as built is within ±10% for "
              f"{mean_of(' as built', 'within_10'):.0%} of networks on average (scatter "
              f"{mean_of(' as built', 'scatter'):.2f}%); refitted on its own calibration "
              f"networks {mean_of(' refit', 'within_10'):.0%} "
              f"({mean_of(' refit', 'scatter'):.2f}%); "
              f"fitted on every build's calibration networks together "
              f"{mean_of(' pooled', 'within_10'):.0%} ({mean_of(' pooled', 'scatter'):.2f}%); "
              f"{every['variant']} (the median of the builds) {every['within_10']:.0%} "
              f"({every['scatter']:.2f}%)" + "".join(
                  f"; their {r['variant']} {r['within_10']:.0%} ({r['scatter']:.2f}%)"
                  for r in rows if r["variant"].startswith("mean of")) + "."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    return rerun_main(__doc__, argv, prog="latency_build_ensemble", evaluate=evaluate,
                      markdown=markdown, rows_key="variants", min_tables=2)


if __name__ == "__main__":
    sys.exit(main())
