"""Statistics of the NAS-Bench-201 protocol: aggregate tables and the tests.

Primary test (issue 25 item 6): one number per setting (the mean over that setting's seeds
in the matched set), a one-sided Wilcoxon signed-rank test over the settings, paired by
setting, for every comparison of a family; Holm's correction over the family
(:mod:`mobile_nas.search.comparison`). Secondary, labelled so: the one-sided Mann-Whitney U
test on the pooled per-run values (every (setting, seed) run of one strategy against every
run of the other, as if one population), with Holm over the same family; it is what the
page reported before and overstates the evidence (its unit is a run, while runs of one
setting share the setting's difficulty).

Families: the six regret strategies (regret per query and per distinct architecture, the
2-D and 3-D hypervolume fractions per query, at the key budgets; every strategy against
``random`` and ``rl`` against every other) and the multi-objective front (hypervolume
fractions; ``rl-sweep`` against every other, ``motpe`` and ``nsga2`` against ``random``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mobile_nas.search.comparison import compare_pairs, with_holm
from mobile_nas.search.counting import VIEWS
from nb201 import protocol as P
from nb201.data import DATASETS, Nb201Data
from nb201.metrics import Metrics, value

ALPHA = 0.05
TESTED_METRICS = {"regret_query": "less", "regret_distinct": "less", "hv2_query": "greater",
                  "hv3_query": "greater"}
FRONT_METRICS = ("hv2_query", "hv3_query")


def comparisons() -> list[tuple[str, str]]:
    """(a, b) pairs tested as 'a better than b': every strategy vs random, rl vs the rest."""
    pairs = [(s, "random") for s in P.STRATEGIES if s != "random"]
    pairs += [("rl", s) for s in P.STRATEGIES if s not in ("rl", "random")]
    return pairs


def front_comparisons() -> list[tuple[str, str]]:
    """The multi-objective family: ``rl-sweep`` against every other strategy, and the two
    Pareto samplers against random; 'a has the larger hypervolume fraction than b'."""
    pairs = [("rl-sweep", s) for s in P.ALL_STRATEGIES if s != "rl-sweep"]
    pairs += [(s, "random") for s in ("motpe", "nsga2")]
    return pairs


def setting_tests(runs: dict[str, list[dict[str, Any]]], metrics: dict[str, str],
                  pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """For every (metric, key budget, pair): the per-setting Wilcoxon test (primary) and the
    pooled Mann-Whitney U test (secondary), each Holm-adjusted over all of them together."""
    family = []
    labels = []
    for metric, alternative in metrics.items():
        for b in P.KEY_BUDGETS:
            per_run = {s: [(m["setting"], value(m, metric, b)) for m in ms]
                       for s, ms in runs.items()}
            for c in compare_pairs(per_run, pairs, alternative=alternative):
                family.append(c)
                labels.append({"metric": metric, "budget": b})
    return [label | c.to_json() | {"a_better": c.a_better, "b_better": c.b_better}
            for label, c in zip(labels, with_holm(family), strict=True)]


def changed_conclusions(tests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tests whose verdict at ``ALPHA`` after Holm differs between the pooled
    Mann-Whitney test (what the page reported before) and the per-setting Wilcoxon test."""
    return [t for t in tests
            if (t["p_holm"] < ALPHA) != (t["pooled_p_holm"] < ALPHA)]


def tuning_table(records: list[dict[str, Any]], metrics: Metrics,
                 grid: dict[str, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """Per strategy configuration of ``grid`` (this protocol's ``TUNING_GRID`` by default):
    mean ± se regret at the key budgets in both views, the criterion and the number of
    seeds, from the stored tuning runs."""
    grid = P.TUNING_GRID if grid is None else grid
    rows = []
    for s, configs in grid.items():
        for c, options in enumerate(configs):
            ms = [metrics.of(r) for r in records if r["strategy"] == s and r["config"] == c]
            row: dict[str, Any] = {"strategy": s, "config": c, "options": options,
                                   "seeds": sorted(m["seed"] for m in ms)}
            if ms:
                for view in VIEWS:
                    for b in P.KEY_BUDGETS:
                        v = np.array([value(m, f"regret_{view}", b) for m in ms])
                        row[f"regret_{view}_{b}"] = float(v.mean())
                        row[f"se_{view}_{b}"] = float(v.std(ddof=1) / math.sqrt(len(v))) \
                            if len(v) > 1 else float("nan")
                row["criterion"] = float(np.mean([row[f"regret_{v}_{b}"] for v in VIEWS
                                                  for b in P.KEY_BUDGETS]))
                row["mean_distinct_at_300_queries"] = float(np.mean(
                    [m["distinct_at_query_budget"] for m in ms]))
                row["mean_seconds"] = float(np.mean([m["seconds"] for m in ms]))
            rows.append(row)
    return rows




def summarize(records: list[dict[str, Any]], metrics: Metrics, data: Nb201Data
              ) -> dict[str, Any]:
    """Coverage, aggregate tables, curves and tests over the matched reporting runs."""
    planned = P.reporting_settings(data.devices)
    by: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in records:
        by.setdefault((r["setting"], r["seed"]), {})[r["strategy"]] = r
    matched = sorted(k for k, v in by.items() if set(v) >= set(P.STRATEGIES))
    runs = {s: [metrics.of(by[k][s]) for k in matched] for s in P.STRATEGIES}
    front = front_summary(by, metrics)
    seeds_per_setting: dict[str, list[int]] = {}
    for setting, seed in matched:
        seeds_per_setting.setdefault(setting, []).append(seed)
    out: dict[str, Any] = {
        "planned_runs": len(planned) * len(P.REPORTING_SEEDS) * len(P.STRATEGIES),
        "front_planned_runs": len(planned) * len(P.REPORTING_SEEDS)
        * len(P.FRONT_STRATEGIES),
        "stored_runs": sum(r["strategy"] in P.STRATEGIES for r in records),
        "matched_runs": len(matched), "front": front,
        "settings_planned": len(planned), "settings_covered": len(seeds_per_setting),
        "seeds_per_setting": seeds_per_setting,
        "uncovered_settings": [s.key for s in planned if s.key not in seeds_per_setting]}
    if not matched:
        return out

    def table(keep) -> dict[str, Any]:
        return aggregate(runs, keep)

    out["all"] = table(lambda m: True)
    cpu = sum(out["all"][s]["mean_cpu_seconds"] for s in P.STRATEGIES)
    cpu_front = sum(front["all"][s]["mean_cpu_seconds"] for s in P.FRONT_STRATEGIES) \
        if front["matched_runs"] else 0.0
    sets = len(planned) * len(P.REPORTING_SEEDS)
    out["projected_cpu_hours"] = {
        "per_seed_of_every_setting": (cpu + cpu_front) * len(planned) / 3600,
        "left": (cpu * (sets - len(matched)) + cpu_front * (sets - front["matched_runs"]))
        / 3600}
    out["without_earlier_rl_sweep_pairs"] = table(
        lambda m: m["setting"].pair not in P.EARLIER_RL_SWEEP_PAIRS)
    out["by_dataset"] = {ds: table(lambda m, ds=ds: m["setting"].dataset == ds)
                         for ds in DATASETS}
    out["by_percentile"] = {str(p): table(lambda m, p=p: m["setting"].percentile == p)
                            for p in P.PERCENTILES}
    out["by_device"] = {d: table(lambda m, d=d: m["setting"].device == d)
                        for d in data.devices}
    out["curves"] = {s: {view: np.mean([m[f"regret_{view}"] for m in runs[s]],
                                       axis=0).round(4).tolist() for view in VIEWS}
                     for s in P.STRATEGIES}
    out["tests"] = setting_tests(runs, TESTED_METRICS, comparisons())
    out["changed"] = changed_conclusions(out["tests"])
    out["rl_rank"] = {f"{view}_{b}": 1 + sorted(
        P.STRATEGIES, key=lambda s: out["all"][s][f"regret_{view}_{b}"][0]).index("rl")
        for view in VIEWS for b in P.KEY_BUDGETS}
    return out


def aggregate(runs: dict[str, list[dict[str, Any]]], keep=lambda m: True
              ) -> dict[str, Any]:
    """Per strategy, over its runs that ``keep`` accepts: mean ± s.e. of every metric at
    every budget, repeats and cost."""
    t: dict[str, Any] = {}
    for s, all_ms in runs.items():
        ms = [m for m in all_ms if keep(m)]
        if not ms:
            continue
        t[s] = {"runs": len(ms)}
        for metric in ("regret_query", "regret_distinct", "hv2_query", "hv2_distinct",
                       "hv3_query", "hv3_distinct"):
            for b in P.BUDGETS:
                v = np.array([value(m, metric, b) for m in ms])
                t[s][f"{metric}_{b}"] = [float(v.mean()), float(
                    v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")]
        t[s]["distinct_at_300_queries"] = float(np.mean(
            [m["distinct_at_query_budget"] for m in ms]))
        t[s]["stopped_at_cap"] = sum(m["stopped"] == "query_cap" for m in ms)
        t[s]["mean_seconds"] = float(np.mean([m["seconds"] for m in ms]))
        t[s]["mean_cpu_seconds"] = float(np.mean([m["cpu_seconds"] for m in ms]))
    return t


def front_summary(by: dict[tuple[str, int], dict[str, dict[str, Any]]], metrics: Metrics
                  ) -> dict[str, Any]:
    """The multi-objective comparison over the (setting, seed) runs all eight strategies
    completed: hypervolume tables, tests (their own Holm family) and ``rl-sweep``'s rank."""
    matched = sorted(k for k, v in by.items() if set(v) >= set(P.ALL_STRATEGIES))
    out: dict[str, Any] = {"matched_runs": len(matched),
                           "settings_covered": len({k[0] for k in matched})}
    if not matched:
        return out
    runs = {s: [metrics.of(by[k][s]) for k in matched] for s in P.ALL_STRATEGIES}
    out["all"] = aggregate(runs)
    out["tests"] = setting_tests(runs, {m: "greater" for m in FRONT_METRICS},
                                 front_comparisons())
    out["changed"] = changed_conclusions(out["tests"])
    out["rl_sweep_rank"] = {f"{metric}_{b}": 1 + sorted(
        P.ALL_STRATEGIES, key=lambda s: -out["all"][s][f"{metric}_{b}"][0]).index("rl-sweep")
        for metric in FRONT_METRICS for b in P.KEY_BUDGETS}
    return out
