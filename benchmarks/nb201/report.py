"""The NAS-Bench-201 protocol's report: ``benchmarks/results/nb201_protocol.{json,md,png}``
from the stored runs alone (tuning table, reporting tables, the per-setting tests and the
pooled tests beside them, the multi-objective front)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _shared import machine_facts
from mobile_nas.atomic import atomic_path, atomic_write_json, atomic_write_text
from mobile_nas.search.counting import VIEWS
from nb201 import protocol as P
from nb201 import statistics as S
from nb201.data import DATASET_NAMES, Nb201Data
from nb201.metrics import Metrics
from nb201.store import RunStore


def phase_report(args, data: Nb201Data) -> int:
    """Writes ``args.out`` .json/.md/.png from the runs stored in ``args.store``."""
    store_dir = Path(args.store)
    metrics = Metrics(data)
    tuning = P.checked_records(RunStore(store_dir / "tuning.jsonl"), "tuning")
    rows = S.tuning_table(tuning, metrics)
    frozen_path = store_dir / "frozen.json"
    frozen = P.frozen_settings(store_dir) if frozen_path.is_file() else None
    reporting = P.checked_records(RunStore(store_dir / "reporting.jsonl"), "reporting")
    P.check_reporting_records(reporting, frozen)
    summary = S.summarize(reporting, metrics, data)
    cost_path = store_dir / "cost.json"
    result = {
        "schema_version": P.SCHEMA_VERSION, "benchmark": "nb201_protocol",
        "data": str(data.folder), "devices": data.devices,
        "protocol": {"tuning_setting": P.TUNING_SETTING.key,
                     "tuning_seeds": [P.TUNING_SEEDS[0], P.TUNING_SEEDS[-1]],
                     "reporting_settings": len(P.reporting_settings(data.devices)),
                     "reporting_seeds": [P.REPORTING_SEEDS[0], P.REPORTING_SEEDS[-1]],
                     "strategies": list(P.STRATEGIES), "queries": P.QUERIES,
                     "distinct": P.DISTINCT, "query_cap": P.QUERY_CAP,
                     "budgets": list(P.BUDGETS), "reward": P.REWARD,
                     "tuning_grid": P.TUNING_GRID},
        "statistics": {"primary": "one-sided Wilcoxon signed-rank over settings (one mean "
                                  "over seeds per setting, paired by setting), Holm over "
                                  "each family",
                       "secondary": "one-sided Mann-Whitney U on the pooled per-run values, "
                                    "Holm over each family",
                       "alpha": S.ALPHA},
        "tuning": {"planned": len(P.tuning_plan()), "stored": len(tuning), "table": rows,
                   "records_sha256": P.sha256_file(store_dir / "tuning.jsonl")
                   if (store_dir / "tuning.jsonl").exists() else None},
        "frozen": frozen,
        "reporting": summary,
        "cost": json.loads(cost_path.read_text()) if cost_path.is_file() else None,
        "machine": machine_facts("cpu", "python"),
    }
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), result, indent=None)
    if summary["matched_runs"]:
        _plot(summary, out.with_suffix(".png"))
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(out.with_suffix(".md").read_text())
    return 0


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, view in zip(axes[0], VIEWS, strict=True):
        for s in P.STRATEGIES:
            c = summary["curves"][s][view]
            ax.plot(range(1, len(c) + 1), c, label=s)
        ax.set_yscale("log")
        ax.set_xlabel("queries" if view == "query" else "distinct architectures evaluated")
        ax.set_ylabel("mean regret (accuracy points)")
        ax.set_title(f"best-so-far regret per {view}")
        ax.grid(alpha=0.3)
        ax.legend()
    front = summary["front"]
    hv_table = front["all"] if front["matched_runs"] else summary["all"]
    for ax, hv in zip(axes[1], ("hv2", "hv3"), strict=True):
        for s, row in hv_table.items():
            ax.plot(P.BUDGETS, [row[f"{hv}_query_{b}"][0] for b in P.BUDGETS],
                    marker="o", label=s, linestyle="--" if s in P.FRONT_STRATEGIES else "-")
        ax.set_xlabel("queries")
        ax.set_ylabel("hypervolume / true hypervolume")
        ax.set_title("(accuracy, latency)" if hv == "hv2" else "(accuracy, latency, MACs)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"NAS-Bench-201 reporting set, {summary['matched_runs']} matched "
                 f"(setting, seed) runs per strategy")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _fmt(pair: Sequence[float], digits: int = 3) -> str:
    m, se = pair
    return f"{m:.{digits}f}" if math.isnan(se) else f"{m:.{digits}f} ± {se:.{digits}f}"


def _seed_ranges(seeds: Sequence[int]) -> str:
    seeds = sorted(seeds)
    parts, start = [], None
    for i, s in enumerate(seeds):
        if start is None:
            start = s
        if i + 1 == len(seeds) or seeds[i + 1] != s + 1:
            parts.append(str(start) if start == s else f"{start}-{s}")
            start = None
    return ", ".join(parts)


def markdown(r: dict[str, Any]) -> str:
    p = r["protocol"]
    L = [
        "# NAS-Bench-201 search strategies under a fixed protocol",
        "",
        "Generated by `benchmarks/nb201_protocol.py report` from the raw runs in "
        "`benchmarks/results/nb201_protocol/` (nothing here is edited by hand). Machine: "
        f"{r['machine']['cpu']}.",
        "",
        "## Protocol (fixed before the runs)",
        "",
        f"- **Tuning set**: `{p['tuning_setting']}` (Pixel 3, CIFAR-10, target = the 50th "
        f"latency percentile), seeds {p['tuning_seeds'][0]}-{p['tuning_seeds'][1]}; nothing "
        f"else. Every strategy with options tries the same number of configurations, {P.K} "
        f"(configuration 0 = its defaults; `random` has no options: 1). Criterion: "
        f"mean regret averaged over {', '.join(map(str, P.KEY_BUDGETS))} and both views; "
        f"the winners are frozen in `frozen.json` before any reporting run.",
        f"- **Reporting set**: every (device, dataset) pair but Pixel 3 / CIFAR-10 "
        f"({p['reporting_settings'] // len(P.PERCENTILES)} pairs: {len(r['devices']) - 1} other "
        f"devices x 3 datasets, and Pixel 3 x CIFAR-100 and ImageNet16-120), each at the "
        f"25th, 50th and 75th percentile of the device's latency over all 15,625 cells: "
        f"{p['reporting_settings']} settings, seeds {p['reporting_seeds'][0]}-"
        f"{p['reporting_seeds'][1]}. A run cannot report the tuning pair, nor tune a "
        f"reporting setting (`check_run`, tested).",
        f"- **Runs**: `mobile-nas search`'s code path (`run_search`, tabular evaluator, "
        f"in-memory study), reward MnasNet `{p['reward']}` (the target is a budget), every "
        f"candidate evaluated; the strategy's seed is the seed when tuning and one derived "
        f"from (setting, seed) when reporting (independent streams across settings, the same "
        f"for every strategy of a run). A run stops once it has made {p['queries']} queries and "
        f"evaluated {p['distinct']} distinct cells, or at {p['query_cap']} queries. The "
        f"queried NB201 indices and the repeats among them are stored for every run.",
        "- **Regret**: the table's best feasible accuracy minus the best feasible accuracy "
        "found, in accuracy points (accuracy 0 while nothing feasible is found); *per query* "
        "(repeats cost a query) and *per distinct architecture* (repeats are free; a run "
        "stopped by the cap keeps its last value).",
        "- **Hypervolume fraction**: hypervolume of every cell a run evaluated, over that of "
        "all 15,625 cells, for (accuracy ↑, latency ↓) and (accuracy ↑, latency ↓, MACs ↓); "
        "MACs are fvcore counts of the `nb201` network (3x32x32, 10 classes; the network the "
        "latencies were measured on). Fixed reference point per (device, dataset): the "
        "dataset's median accuracy over the table, the device's largest latency, the largest "
        "MACs.",
        "- **Statistics** (primary test changed after the runs; see the changes below): on "
        "the matched runs (every strategy ran the same (setting, seed)), one number per "
        "setting and strategy (the mean over its seeds) and a one-sided Wilcoxon "
        "signed-rank test over the settings, paired by setting: every strategy against "
        "`random` and `rl` against each other strategy, for regret per query and per "
        "distinct architecture and both hypervolume fractions per query, at "
        f"{', '.join(map(str, P.KEY_BUDGETS))}; Holm's correction over all "
        f"{len(S.TESTED_METRICS) * len(P.KEY_BUDGETS) * len(S.comparisons())} comparisons. "
        "The protocol's original test, one-sided Mann-Whitney U on the pooled per-run "
        "values, is kept beside it as a secondary column.",
        "- Published NB201 figures are not quoted: none shares this constrained, "
        "latency-targeted protocol.",
        "",
    ]
    if P.PROTOCOL_CHANGES:
        L += ["Changes after the first run:", ""] + [f"- {c}" for c in P.PROTOCOL_CHANGES] + [""]
    if r.get("cost"):
        c = r["cost"]
        L += ["## Cost per run (planning)", "",
              f"One run per strategy (defaults) on `{c['setting']}`, seed {c['seed']} (a "
              f"seed of neither phase; no accuracy recorded), measured {c['measured']} on "
              f"{c['machine']['cpu']} ({c['machine']['cores']} cores, 1-minute load "
              f"{c['machine']['load_average_1min']}: {c['machine']['note']}).", "",
              "| strategy | wall s | CPU s | queries | distinct |",
              "| --- | --- | --- | --- | --- |"]
        for s, v in c["per_run"].items():
            L.append(f"| {s} | {v['seconds']:.2f} | {v['cpu_seconds']:.2f} | {v['queries']} "
                     f"| {v['distinct']} |")
        ps = c["projected_seconds"]
        L += ["", f"Projected on one free core (CPU seconds): tuning "
                  f"{ps['tuning'] / 60:.0f} min, "
                  f"reporting {ps['reporting'] / 3600:.1f} h "
                  f"({ps['reporting_runs']} runs).", ""]
    t = r["tuning"]
    L += ["## Tuning (Pixel 3 / CIFAR-10, median target, seeds 100-119)", "",
          f"{t['stored']} of {t['planned']} planned tuning runs stored "
          f"(records sha256 `{(t['records_sha256'] or '')[:12]}`). Mean regret ± standard "
          f"error (accuracy points) per query (q) and per distinct architecture (d); "
          f"criterion = mean of the six; **bold** = frozen.", "",
          "| strategy | # | options | seeds | q100 | q150 | q300 | d100 | d150 | d300 | "
          "criterion | distinct in 300 queries | wall s/run |",
          "| --- |" + " --- |" * 12]
    frozen = (r.get("frozen") or {}).get("strategies", {})
    for row in t["table"]:
        chosen = frozen.get(row["strategy"], {}).get("config") == row["config"]
        name = f"**{row['strategy']}**" if chosen else row["strategy"]
        if "criterion" not in row:
            L.append(f"| {name} | {row['config']} | `{json.dumps(row['options'])}` | 0 |"
                     + " |" * 9)
            continue
        cells = [_fmt((row[f"regret_{v}_{b}"], row[f"se_{v}_{b}"]))
                 for v in VIEWS for b in P.KEY_BUDGETS]
        L.append(f"| {name} | {row['config']} | `{json.dumps(row['options'])}` | "
                 f"{len(row['seeds'])} | " + " | ".join(cells) +
                 f" | {row['criterion']:.3f} | {row['mean_distinct_at_300_queries']:.0f} | "
                 f"{row['mean_seconds']:.1f} |")
    if frozen:
        L += ["", "Frozen: " + ", ".join(f"`{s}` #{v['config']} {json.dumps(v['options'])}"
                                         for s, v in frozen.items())
              + f" (`frozen.json` sha256 `{r['frozen']['sha256'][:12]}`)."]
    else:
        L += ["", "Not frozen yet: the reporting phase cannot start."]
    L += ["", "Note: `rl`'s defaults (configuration 0) were chosen before this protocol on "
              "Pixel 3 / CIFAR-10, Raspberry Pi 4 / CIFAR-100 and Pixel 2 / ImageNet16-120 "
              "with seeds 100-119; the last two pairs are in the reporting set, so the "
              "reporting summary is also given without them.", ""]
    s = r["reporting"]
    L += ["## Reporting set", "",
          f"Coverage: {s['stored_runs']} of {s['planned_runs']} planned runs of the six "
          f"regret strategies stored; {s['matched_runs']} (setting, seed) combinations run "
          f"by every one of them, on {s['settings_covered']} of {s['settings_planned']} "
          f"settings; {s['front']['matched_runs']} of "
          f"{s['front_planned_runs'] // len(P.FRONT_STRATEGIES)} by `motpe` and `rl-sweep` "
          f"too (see the multi-objective front)."]
    if s["matched_runs"]:
        by_seeds: dict[str, list[str]] = {}
        for setting, seeds in s["seeds_per_setting"].items():
            by_seeds.setdefault(_seed_ranges(seeds), []).append(setting)
        L += ["Seeds per covered setting: " + "; ".join(
            f"seeds {k} on {len(v)} settings" for k, v in sorted(by_seeds.items())) + "."]
    if s["uncovered_settings"]:
        L += [f"Not run yet: {len(s['uncovered_settings'])} settings (e.g. "
              f"{', '.join(s['uncovered_settings'][:3])}). Every figure below is over the "
              f"covered runs only and says nothing about the rest."]
    L += [""]
    if not s["matched_runs"]:
        L += ["No reporting run yet.", ""]
        return "\n".join(L)
    L += _reporting_tables(s)
    L += _front_tables(s["front"])
    return "\n".join(L)


def _reporting_tables(s: dict[str, Any]) -> list[str]:
    L: list[str] = []
    head = "| strategy | " + " | ".join(str(b) for b in P.BUDGETS) + " |"
    sep = "| --- |" + " --- |" * len(P.BUDGETS)
    for title, metric, digits in (
            ("Mean regret per query (accuracy points, ± s.e.; lower is better)",
             "regret_query", 3),
            ("Mean regret per distinct architecture evaluated (repeats free)",
             "regret_distinct", 3),
            ("Hypervolume fraction, (accuracy, latency), per query (higher is better)",
             "hv2_query", 4),
            ("Hypervolume fraction, (accuracy, latency), per distinct architecture",
             "hv2_distinct", 4),
            ("Hypervolume fraction, (accuracy, latency, MACs), per query", "hv3_query", 4),
            ("Hypervolume fraction, (accuracy, latency, MACs), per distinct architecture",
             "hv3_distinct", 4)):
        L += [f"### {title}", "", f"All covered settings ({s['matched_runs']} runs per "
              "strategy); columns are budgets.", "", head, sep]
        for st, row in s["all"].items():
            L.append(f"| {st} | " + " | ".join(_fmt(row[f"{metric}_{b}"], digits)
                                               for b in P.BUDGETS) + " |")
        L.append("")
    L += ["### Repeats and cost", "", "| strategy | distinct cells in 300 queries | runs "
          f"stopped at {P.QUERY_CAP} queries | wall s/run | CPU s/run |",
          "| --- | --- | --- | --- | --- |"]
    for st, row in s["all"].items():
        L.append(f"| {st} | {row['distinct_at_300_queries']:.0f} | {row['stopped_at_cap']} | "
                 f"{row['mean_seconds']:.2f} | {row['mean_cpu_seconds']:.2f} |")
    ph = s["projected_cpu_hours"]
    L += ["", f"At these CPU times, one seed of every setting costs "
              f"{ph['per_seed_of_every_setting']:.2f} CPU hours and the runs not made yet "
              f"{ph['left']:.1f} CPU hours on one free core (wall time on a shared machine is "
              f"longer)."]
    mid = P.KEY_BUDGETS[len(P.KEY_BUDGETS) // 2]
    L += ["", f"### Breakdown at {mid} (mean regret per query / per distinct)", "",
          "| group | runs | " + " | ".join(P.STRATEGIES) + " |",
          "| --- | --- |" + " --- |" * len(P.STRATEGIES)]
    groups = [("all", s["all"]),
              ("without the earlier rl-sweep pairs", s["without_earlier_rl_sweep_pairs"])]
    groups += [(DATASET_NAMES[k], v) for k, v in s["by_dataset"].items()]
    groups += [(f"p{k} target", v) for k, v in s["by_percentile"].items()]
    groups += [(k, v) for k, v in s["by_device"].items()]
    for name, t in groups:
        if not t:
            continue
        n = next(iter(t.values()))["runs"]
        L.append(f"| {name} | {n} | " + " | ".join(
            f"{t[st][f'regret_query_{mid}'][0]:.3f} / "
            f"{t[st][f'regret_distinct_{mid}'][0]:.3f}"
            for st in P.STRATEGIES) + " |")
    L += [""] + _tests_section(s["tests"], "Tests", "lower regret or larger hypervolume")
    L += ["## Closing note (generated)", ""]
    for view in VIEWS:
        for b in P.KEY_BUDGETS:
            rank = s["rl_rank"][f"{view}_{b}"]
            ps = [t for t in s["tests"] if t["metric"] == f"regret_{view}"
                  and t["budget"] == b and t["a"] == "rl"]
            best = min(P.STRATEGIES, key=lambda st: s["all"][st][f"regret_{view}_{b}"][0])
            L.append(f"- {view} view, {b}: `rl` ranks {rank} of {len(P.STRATEGIES)} by mean "
                     f"regret (lowest: `{best}`); Holm p (per-setting Wilcoxon) that `rl`'s "
                     f"regret is lower: " + ", ".join(
                         f"vs {t['b']} {t['p_holm']:.3g} (lower on {t['a_better']} of "
                         f"{t['settings']} settings)" for t in ps) + ".")
    L += ["", f"Over {s['matched_runs']} matched runs of "
          f"{s['planned_runs'] // len(P.STRATEGIES)} planned per strategy; see Coverage.", ""]
    return L


def _tests_section(tests: Sequence[dict[str, Any]], title: str, better: str) -> list[str]:
    """The table of a family's tests, primary and secondary side by side, and the
    comparisons whose verdict differs between them."""
    n = len(tests)
    settings = max((t["settings"] for t in tests), default=0)
    runs = max((t["runs_a"] for t in tests), default=0)
    L = [f"### {title}: per-setting Wilcoxon (primary), pooled Mann-Whitney (secondary)", "",
         f"**Primary**: one number per setting (the mean over its seeds), a one-sided "
         f"Wilcoxon signed-rank test over the {settings} settings, paired by setting; Holm's "
         f"correction over these {n} comparisons. **Secondary, for comparison only**: the "
         f"one-sided Mann-Whitney U test on the pooled runs ({runs} per strategy, every "
         "setting's seeds together, as if one population), Holm over the same "
         f"{n}; it is what this page reported before, and it overstates the evidence: runs "
         "of one setting share that setting's difficulty, so the pooled test's unit (a run) "
         "is not the unit of replication (a setting). Settings: on how many of them `a`'s "
         f"mean is better ({better}) / worse / equal; difference: mean over settings of "
         "(a - b).", "",
         "| metric | budget | comparison | settings a better / worse / tied | difference | "
         "Wilcoxon p | **Holm p** | pooled MW p (secondary) | pooled Holm p (secondary) |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in tests:
        word = "lower" if t["alternative"] == "less" else "higher"
        mark = " *" if t["p_holm"] < S.ALPHA else ""
        pmark = " †" if t["pooled_p_holm"] < S.ALPHA else ""
        L.append(f"| {t['metric']} | {t['budget']} | {t['a']} {word} than {t['b']} | "
                 f"{t['a_better']} / {t['b_better']} / {t['ties']} | "
                 f"{t['mean_difference']:+.4g} | {t['p']:.3g} | **{t['p_holm']:.3g}**{mark} | "
                 f"{t['pooled_p']:.3g} | {t['pooled_p_holm']:.3g}{pmark} |")
    L += ["", f"`*`: below {S.ALPHA} after Holm, per-setting test (the page's conclusions); "
          f"`†`: below {S.ALPHA} after Holm by the pooled test (secondary).", ""]
    changed = S.changed_conclusions(tests)
    lost = [t for t in changed if t["pooled_p_holm"] < S.ALPHA]
    gained = [t for t in changed if t["p_holm"] < S.ALPHA]
    L += [f"#### {title}: conclusions that change with the per-setting test", ""]
    if not changed:
        L += [f"None: every one of the {n} comparisons has the same verdict at {S.ALPHA} "
              "after Holm under both tests.", ""]
        return L
    L += [f"{len(changed)} of {n} comparisons change verdict. The page before this one "
          "(pooled test) called the first group significant; it no longer is:", ""]
    L += [_changed_line(t) for t in lost] or ["- none"]
    L += ["", "Significant by the per-setting test but not by the pooled one:", ""]
    L += [_changed_line(t) for t in gained] or ["- none"]
    return L + [""]


def _changed_line(t: dict[str, Any]) -> str:
    word = "lower" if t["alternative"] == "less" else "higher"
    return (f"- {t['metric']} at {t['budget']}: `{t['a']}` {word} than `{t['b']}`: better on "
            f"{t['a_better']} of {t['settings']} settings, worse on {t['b_better']}; Holm p "
            f"{t['p_holm']:.3g} per setting, {t['pooled_p_holm']:.3g} pooled.")


def _front_tables(f: dict[str, Any]) -> list[str]:
    L = ["## Multi-objective front (item 3)", "",
         "Hypervolume fraction per query of the cells each strategy evaluated, over the "
         f"(setting, seed) runs that all {len(P.ALL_STRATEGIES)} strategies completed: "
         f"{f['matched_runs']} runs per strategy on {f.get('settings_covered', 0)} settings. "
         "`motpe` and `nsga2` search accuracy and latency as two objectives (the target a "
         "constraint); `rl-sweep` is `rl` with MnasNet's soft reward run once per target "
         f"({', '.join(f'p{p}' for p in P.SWEEP_PERCENTILES)} of the device's latency), "
         f"{P.QUERIES // len(P.SWEEP_PERCENTILES)} queries each, interleaved (its first b queries "
         "are b/3 of each); the others are the regret runs above (one target, hard reward). "
         "`motpe` and `rl-sweep` run with the frozen options of `tpe` and `rl` (not tuned "
         "on their own).", ""]
    if not f["matched_runs"]:
        return L + ["No run of all eight strategies yet.", ""]
    head = "| strategy | " + " | ".join(str(b) for b in P.BUDGETS) + " |"
    sep = "| --- |" + " --- |" * len(P.BUDGETS)
    for title, metric in (("(accuracy, latency)", "hv2_query"),
                          ("(accuracy, latency, MACs)", "hv3_query")):
        L += [f"### Hypervolume fraction, {title}, per query (higher is better)", "",
              head, sep]
        for st, row in sorted(f["all"].items(),
                              key=lambda kv: -kv[1][f"{metric}_{P.BUDGETS[-1]}"][0]):
            L.append(f"| {st} | " + " | ".join(_fmt(row[f"{metric}_{b}"], 4)
                                               for b in P.BUDGETS) + " |")
        L.append("")
    L += _tests_section(f["tests"], "Front tests", "larger hypervolume")
    L += ["Generated summary (Holm p of the per-setting test):", ""]
    for metric in S.FRONT_METRICS:
        for b in P.KEY_BUDGETS:
            best = max(P.ALL_STRATEGIES, key=lambda st: f["all"][st][f"{metric}_{b}"][0])
            ps = [t for t in f["tests"] if t["metric"] == metric and t["budget"] == b
                  and t["a"] == "rl-sweep"]
            L.append(f"- {metric}, {b} queries: `rl-sweep` ranks "
                     f"{f['rl_sweep_rank'][f'{metric}_{b}']} of {len(P.ALL_STRATEGIES)} "
                     f"(largest: `{best}`); Holm p that it is larger: "
                     + ", ".join(f"vs {t['b']} {t['p_holm']:.3g} ({t['a_better']}/"
                                 f"{t['settings']})" for t in ps) + ".")
    return L + [""]
