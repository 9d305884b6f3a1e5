"""The RL controller against local search and four other strategies on NAS-Bench-201 settings
no run has touched (issue 26), decided in advance.

The protocol, ``benchmarks/protocols/nb201_rl.json`` (committed before the first run; its
commit is printed next to the result), fixes everything: the tuning setting (Pixel 3 /
CIFAR-10 at the median latency, seeds 100-119) and the configurations tried there for
``rl`` and ``local`` (the same number each); the four strategies not re-tuned and their
options; the reporting set (35 device/dataset pairs at the 10th and 90th latency
percentiles, seeds 20-39: 70 settings, targets and seeds no earlier run used); the test
(one number per setting, one-sided Wilcoxon signed-rank over settings, Holm over 30
comparisons of ``rl`` with each other strategy) and the decision rule. A run is
``nb201_protocol``'s run (:func:`nb201.protocol.execute`: ``mobile-nas search``'s own code
path on the tabular benchmark); :func:`check` refuses a run outside the protocol (a seed or
setting of the other phase, or a start before the protocol's commit).

Phases (each resumable; several processes may share one; ``--max-minutes`` runs a chunk)::

    python benchmarks/nb201_rl.py tune      # 320 tuning runs (rl and local, 8 configs each)
    python benchmarks/nb201_rl.py freeze    # the tuning table -> nb201_rl/frozen.json
    python benchmarks/nb201_rl.py run       # 8,400 reporting runs (1,400 per strategy)
    python benchmarks/nb201_rl.py report    # benchmarks/results/nb201_rl.{json,md,png}
    python benchmarks/nb201_rl.py pack      # stored reporting runs -> a gzip part

The raw runs (``benchmarks/results/nb201_rl/{tuning,reporting}*.jsonl*``: every queried
NB201 index of every run) are committed; the page is computed from them alone.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from _shared import PROTOCOLS, machine_facts, result_path, run_main
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.report import protocol as prot
from mobile_nas.search.counting import VIEWS
from nb201 import protocol as P
from nb201.data import DATASET_NAMES, DATASETS, DEFAULT_DATA, Nb201Data
from nb201.metrics import Metrics, value
from nb201.statistics import aggregate, setting_tests, tuning_table
from nb201.store import RunStore, pack_phase

PROTOCOL = PROTOCOLS / "nb201_rl.json"
STORE = result_path("nb201_rl")
OUT = result_path("nb201_rl")
GAP = result_path("nb201_rl_gap.json")
REPORTING_PERCENTILES = (10, 90)
TUNED = ("rl", "local")


class Plan:
    """What the registered protocol allows: settings, seeds, the grid, the plans."""

    def __init__(self, reg: prot.RegisteredProtocol, devices: list[str]) -> None:
        self.reg = reg
        p = reg.protocol
        self.recipe = p.recipe
        self.strategies: list[str] = list(p.strategies)
        self.seeds = {phase: tuple(p.seeds[phase]) for phase in ("tuning", "reporting")}
        self.tuning_setting = P.Setting.from_key(self.recipe["tuning_setting"])
        self.grid: dict[str, list[dict[str, Any]]] = self.recipe["tuning_grid"]
        self.fixed: dict[str, dict[str, Any]] = self.recipe["not_retuned"]
        self.reporting_settings = [
            P.Setting(d, ds, pct) for d in sorted(devices) for ds in DATASETS
            for pct in REPORTING_PERCENTILES if (d, ds) != self.tuning_setting.pair]
        self.allowed = {"tuning": {self.tuning_setting},
                         "reporting": set(self.reporting_settings)}

    def check(self, phase: str, setting: P.Setting, seed: int) -> None:
        """Raises :class:`nb201.protocol.ProtocolError` unless ``phase`` may run ``setting``
        with ``seed`` now (after the protocol's commit)."""
        if phase not in self.allowed:
            raise P.ProtocolError(f"unknown phase {phase!r} (tuning or reporting)")
        if setting not in self.allowed[phase]:
            raise P.ProtocolError(f"{setting.key} is not a {phase} setting of "
                                  f"{self.reg.path.name}")
        try:
            self.reg.check_run(seeds={phase: seed},
                               started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               what=f"{phase} run {setting.key} seed {seed}")
        except prot.ProtocolError as exc:
            raise P.ProtocolError(str(exc)) from None

    def tuning(self) -> list[P.RunSpec]:
        """Every tuning run, seed-major (a partial phase covers every configuration)."""
        return [P.RunSpec("tuning", self.tuning_setting, s, c, json.dumps(o, sort_keys=True),
                          seed)
                for seed in self.seeds["tuning"] for s in TUNED
                for c, o in enumerate(self.grid[s])]

    def reporting(self, frozen: dict[str, Any]) -> list[P.RunSpec]:
        """Every reporting run, seed-major, the six strategies of a (setting, seed)
        together, the settings of each seed in one fixed shuffled order."""
        chosen = frozen["strategies"]
        order = np.random.default_rng(26).permutation(len(self.reporting_settings))
        return [P.RunSpec("reporting", self.reporting_settings[int(i)], s,
                          int(chosen[s]["config"]),
                          json.dumps(chosen[s]["options"], sort_keys=True), seed)
                for seed in self.seeds["reporting"] for i in order for s in self.strategies]


def checked(plan: Plan, store: RunStore, phase: str,
            frozen: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The stored records of ``phase``, each inside the protocol (and, reporting, run with
    the frozen configuration and the derived strategy seed)."""
    out = []
    for r in store.records():
        setting = P.Setting.from_key(r["setting"])
        if r.get("phase") != phase or setting not in plan.allowed[phase] \
                or int(r["seed"]) not in plan.seeds[phase]:
            raise P.ProtocolError(f"{store.path}: record {r.get('key')} is outside "
                                  f"{plan.reg.path.name}")
        if phase == "reporting":
            assert frozen is not None
            if r.get("frozen_sha256") != frozen["sha256"]:
                raise P.ProtocolError(f"{r['key']} was run with other frozen settings")
            want = frozen["strategies"][r["strategy"]]
            if r["config"] != want["config"] or r["options"] != want["options"]:
                raise P.ProtocolError(f"{r['key']} is not the frozen configuration")
            spec = P.RunSpec("reporting", setting, r["strategy"], r["config"], "{}",
                             int(r["seed"]))
            if r.get("strategy_seed") != spec.strategy_seed:
                raise P.ProtocolError(f"{r['key']}: strategy seed {r.get('strategy_seed')}, "
                                      f"not {spec.strategy_seed}")
        out.append(r)
    return out


# -- phases ------------------------------------------------------------------------------------
def phase_freeze(args, plan: Plan, data: Nb201Data) -> int:
    store_dir = Path(args.store)
    path = store_dir / "frozen.json"
    store = RunStore(store_dir / "tuning.jsonl")
    records = checked(plan, store, "tuning")
    missing = {s.key for s in plan.tuning()} - {r["key"] for r in records}
    if missing:
        raise P.ProtocolError(f"the tuning phase is incomplete ({len(missing)} of "
                              f"{len(plan.tuning())} runs missing): run 'tune' to the end")
    if path.exists():
        raise P.ProtocolError(f"{path} exists: the settings are frozen")
    rows = tuning_table(records, Metrics(data), plan.grid)
    chosen: dict[str, Any] = {}
    for s in TUNED:
        best = min((r for r in rows if r["strategy"] == s),
                   key=lambda r: (r["criterion"], r["config"]))
        chosen[s] = {"config": best["config"], "options": best["options"],
                     "criterion": best["criterion"]}
    for s, options in plan.fixed.items():
        chosen[s] = {"config": 0, "options": options, "criterion": None}
    frozen = {"schema_version": 1, "frozen": time.strftime("%Y-%m-%dT%H:%M:%S"),
              **plan.reg.stamp(), "tuning_setting": plan.tuning_setting.key,
              "criterion": plan.recipe["tuning_criterion"],
              "tuning_records_sha256": P.sha256_file(store.path),
              "strategies": {s: chosen[s] for s in plan.strategies}}
    atomic_write_json(path, frozen)
    for s, c in frozen["strategies"].items():
        crit = "" if c["criterion"] is None else f" criterion {c['criterion']:.3f}"
        print(f"{s:<10} config {c['config']} {json.dumps(c['options'])}{crit}")
    return 0


def phase_report(args, plan: Plan, data: Nb201Data) -> int:
    store_dir = Path(args.store)
    metrics = Metrics(data)
    tuning = checked(plan, RunStore(store_dir / "tuning.jsonl"), "tuning")
    out: dict[str, Any] = {"schema_version": 1, **plan.reg.stamp(),
                           "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                           **machine_facts("cpu"),
                           "tuning": tuning_table(tuning, metrics, plan.grid),
                           "tuning_runs": len(tuning), "tuning_planned": len(plan.tuning())}
    frozen_path = store_dir / "frozen.json"
    frozen = P.frozen_settings(store_dir) if frozen_path.exists() else None
    out["frozen"] = frozen
    reporting = checked(plan, RunStore(store_dir / "reporting.jsonl"), "reporting", frozen) \
        if frozen else []
    out["reporting"] = summarize(plan, reporting, metrics, data)
    out["gap"] = json.loads(GAP.read_text())["table"] if GAP.exists() else None
    prefix = Path(args.out)
    atomic_write_json(prefix.with_suffix(".json"), out)
    atomic_write_text(prefix.with_suffix(".md"), markdown(out, plan))
    if out["reporting"].get("matched_runs"):
        _plot(out["reporting"], prefix.with_suffix(".png"))
    print(f"wrote {prefix}.md/.json ({len(tuning)} tuning runs, {len(reporting)} reporting "
          f"runs, {out['reporting'].get('matched_runs', 0)} matched)")
    return 0


# -- statistics and the decision ----------------------------------------------------------------
def summarize(plan: Plan, records: list[dict[str, Any]], metrics: Metrics, data: Nb201Data
              ) -> dict[str, Any]:
    by: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in records:
        by.setdefault((r["setting"], r["seed"]), {})[r["strategy"]] = r
    matched = sorted(k for k, v in by.items() if set(v) >= set(plan.strategies))
    planned = len(plan.reporting_settings) * len(plan.seeds["reporting"])
    out: dict[str, Any] = {"planned_sets": planned, "stored_runs": len(records),
                           "matched_runs": len(matched),
                           "settings_covered": len({k[0] for k in matched}),
                           "settings_planned": len(plan.reporting_settings)}
    if not matched:
        return out
    runs = {s: [metrics.of(by[k][s]) for k in matched] for s in plan.strategies}
    out["all"] = aggregate(runs)
    out["by_percentile"] = {str(p): aggregate(runs, lambda m, p=p: m["setting"].percentile == p)
                            for p in REPORTING_PERCENTILES}
    out["by_dataset"] = {ds: aggregate(runs, lambda m, ds=ds: m["setting"].dataset == ds)
                         for ds in DATASETS}
    out["curves"] = {s: {view: np.mean([m[f"regret_{view}"] for m in runs[s]],
                                       axis=0).round(4).tolist() for view in VIEWS}
                     for s in plan.strategies}
    pairs = [("rl", s) for s in plan.strategies if s != "rl"]
    out["tests"] = setting_tests(runs, {"regret_query": "less", "regret_distinct": "less"},
                                 pairs)
    out["decision"] = decide(out["all"], out["tests"], plan.strategies)
    out["per_setting"] = {s: per_setting(runs[s]) for s in plan.strategies}
    return out


def per_setting(ms: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean regret per setting at the key budgets (the numbers the tests pair)."""
    cells: dict[str, dict[str, list[float]]] = {}
    for m in ms:
        row = cells.setdefault(m["setting"].key, {})
        for view in VIEWS:
            for b in P.KEY_BUDGETS:
                row.setdefault(f"{view}_{b}", []).append(value(m, f"regret_{view}", b))
    return {k: {c: round(float(np.mean(v)), 4) for c, v in row.items()}
            for k, row in sorted(cells.items())}


def decide(table: dict[str, Any], tests: list[dict[str, Any]], strategies: list[str]
           ) -> dict[str, Any]:
    """The protocol's decision rule: rl leads only if it has the lowest mean regret at every
    key budget in both views and Holm p < 0.05 against local in each; otherwise the leader
    is the strategy with the lowest regret averaged over those six cells."""
    cells = [(view, b) for view in VIEWS for b in P.KEY_BUDGETS]
    lowest = {f"{view}_{b}": min(strategies,
                                 key=lambda s: table[s][f"regret_{view}_{b}"][0])
              for view, b in cells}
    vs_local = {f"{t['metric'].removeprefix('regret_')}_{t['budget']}": t["p_holm"]
                for t in tests if t["a"] == "rl" and t["b"] == "local"}
    rl_leads = all(lowest[c] == "rl" for c in lowest) \
        and all(vs_local[c] < 0.05 for c in lowest)
    average = {s: float(np.mean([table[s][f"regret_{view}_{b}"][0] for view, b in cells]))
               for s in strategies}
    leader = "rl" if rl_leads else min(strategies, key=lambda s: (average[s], s))
    missed = [f"{c}: lowest is {lowest[c]}" for c in lowest if lowest[c] != "rl"]
    missed += [f"{c}: Holm p {vs_local[c]:.2g} against local" for c in lowest
               if vs_local[c] >= 0.05]
    return {"rl_leads": rl_leads, "leader": leader, "lowest": lowest,
            "rl_vs_local_p_holm": vs_local, "average_regret": average, "missed": missed}


# -- the page ----------------------------------------------------------------------------------
def _fmt(pair, digits: int = 3) -> str:
    mean, se = pair
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if not math.isnan(se) else f"{mean:.{digits}f}"


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def markdown(r: dict[str, Any], plan: Plan) -> str:
    L = ["# The RL controller on NAS-Bench-201 settings no run has touched (issue 26)", "",
         f"Generated by `benchmarks/nb201_rl.py report` from the raw runs in "
         f"`benchmarks/results/nb201_rl/` on {r['generated']}. Protocol "
         f"`benchmarks/protocols/{r['protocol']}`, committed {r['protocol_committed_at']} "
         f"(`{r['protocol_commit'][:10]}`), before the first run; every run is checked "
         f"against it. Regret: best feasible accuracy of the table minus the best feasible "
         f"accuracy a run found, in points (lower is better); mean ± standard error.", ""]
    L += _gap_section(r.get("gap"))
    L += _tuning_section(r, plan)
    L += _reporting_section(r["reporting"], plan)
    return "\n".join(L) + "\n"


def _gap_section(gap: dict[str, Any] | None) -> list[str]:
    L = ["## 1. Where the old controller's queries went (tuning setting only)", "",
         "From `nb201_rl_gap.md` (Pixel 3 / CIFAR-10 at the median latency, seeds 100-119, "
         "the earlier protocol's frozen options; `rl` is the LSTM controller drawing every "
         "proposal, `proposal=\"sample\"`).", ""]
    if not gap:
        return L + ["(nb201_rl_gap.json not found)", ""]
    L += ["| strategy | median distance to incumbent (100 q) | share one edge away (100 q) "
          "| top-5% share, 100 q (%) | infeasible share, 100 q (%) | regret at 100 / 300 |",
          "| --- | --- | --- | --- | --- | --- |"]
    for s in ("rl", "local", "evolution", "random"):
        t = gap.get(s)
        if not t:
            continue

        def g(key: str, t=t) -> float:
            return t[key]["mean"] if isinstance(t[key], dict) else t[key]

        L.append(f"| {s} | {t['median_distance_100']['median']:.1f} | "
                 f"{g('distance1_share_100'):.2f} | {100 * g('top5_share_100'):.1f} | "
                 f"{100 * g('infeasible_share_100'):.1f} | {g('regret_100'):.3f} / "
                 f"{g('regret_300'):.3f} |")
    L += ["", "The reading that chose the variants below: local search asks cells one edge "
          "from its current cell (62% of its first 100 proposals), the LSTM's draws sit on "
          "a blend of the elite about 3 edges from the best cell, so it reaches the top cells "
          "later. Hence `proposal=\"edit\"`: a policy over one-decision edits (REINFORCE on "
          "how much an edit improved the cell it edited) proposes the next cell from the "
          "current one, which moves to the first better edit; starts come from the LSTM "
          "(`restart=\"policy\"`) or uniformly at random (`restart=\"random\"`, the "
          "configuration frozen below: there the LSTM is trained but its draws are not used, "
          "and the learning that steers the search is the edit policy's).", ""]
    return L


def _tuning_section(r: dict[str, Any], plan: Plan) -> list[str]:
    L = ["## 2. Tuning (Pixel 3 / CIFAR-10, median latency, seeds 100-119)", "",
         f"{r['tuning_runs']} of {r['tuning_planned']} tuning runs stored. Criterion: "
         f"{plan.recipe['tuning_criterion']}. The other four strategies keep the options "
         f"they were tuned to under the earlier protocol "
         f"({plan.recipe['not_retuned_source']}). Before this protocol: "
         f"{plan.recipe['development_before_this_protocol']}.", "",
         "| strategy | config | options | q100 | q150 | q300 | d100 | d150 | d300 | criterion |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    frozen = (r.get("frozen") or {}).get("strategies", {})
    for row in r["tuning"]:
        if "criterion" not in row:
            continue
        mark = " **(frozen)**" if frozen.get(row["strategy"], {}).get("config") \
            == row["config"] else ""
        cells = [_fmt((row[f"regret_{v}_{b}"], row[f"se_{v}_{b}"]), 3)
                 for v in VIEWS for b in P.KEY_BUDGETS]
        L.append(f"| {row['strategy']} | {row['config']}{mark} | "
                 f"`{json.dumps(row['options'])}` | " + " | ".join(cells)
                 + f" | {row['criterion']:.3f} |")
    L += ["", "q: per query; d: per distinct architecture.", ""]
    return L


def _reporting_section(s: dict[str, Any], plan: Plan) -> list[str]:
    L = ["## 3. Reporting set: 35 pairs x 10th and 90th percentile, seeds 20-39", ""]
    if not s.get("matched_runs"):
        return L + [f"No matched reporting run yet ({s.get('stored_runs', 0)} stored).", ""]
    complete = s["matched_runs"] == s["planned_sets"]
    L += [f"{s['matched_runs']} of {s['planned_sets']} (setting, seed) runs with all six "
          f"strategies, on {s['settings_covered']} of {s['settings_planned']} settings"
          + ("." if complete else ": **in progress, not the protocol's result yet**."), ""]
    d = s["decision"]
    verdict = ("**rl leads**: lowest mean regret at 100, 150 and 300 queries in both views "
               "and Holm p < 0.05 against local in each." if d["rl_leads"] else
               f"**rl does not lead** by the rule's letter; it misses on "
               f"{'; '.join(d['missed'])}. The leader by the rule's fallback (lowest regret "
               f"averaged over 3 budgets x 2 views) is **{d['leader']}** "
               f"({d['average_regret'][d['leader']]:.3f} points; "
               + ", ".join(f"{s} {v:.3f}" for s, v in sorted(d["average_regret"].items(),
                                                           key=lambda kv: kv[1])
                           if s != d["leader"]) + ").")
    L += [f"Decision (protocol's rule): {verdict}", ""]
    if not d["rl_leads"] and d["leader"] == "rl":
        L += ["The leader is `rl` in its frozen configuration (the only `rl` that ran here), "
              "so `search --strategy` defaults to `rl` and `rl`'s default options are that "
              "configuration. The rule tied the new default options to 'rl leads'; they "
              "follow the leader instead, because the leader is that configuration: the "
              "earlier default (`proposal=\"sample\"`) did not run on this set and trailed "
              "local search at every budget on the earlier protocol's.", ""]
    hv_best = max(plan.strategies, key=lambda st: s["all"][st]["hv2_query_300"][0])
    L += [f"Hypervolume (descriptive, not tested): after 300 queries the largest 2-D fraction "
          f"is {hv_best}'s ({s['all'][hv_best]['hv2_query_300'][0]:.4f}); rl's is "
          f"{s['all']['rl']['hv2_query_300'][0]:.4f}. Every strategy here searches under the "
          f"hard reward for one target; none of them is built to cover the front.", ""]
    L += ["| strategy | q100 | q150 | q300 | d100 | d150 | d300 | hv2 q300 | hv3 q300 | "
          "CPU s/run |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    L += _rows(s["all"], plan.strategies)
    for p in REPORTING_PERCENTILES:
        L += ["", f"At the {p}th percentile:", "",
              "| strategy | q100 | q150 | q300 | d100 | d150 | d300 | hv2 q300 | hv3 q300 | "
              "CPU s/run |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        L += _rows(s["by_percentile"][str(p)], plan.strategies)
    L += ["", "By dataset (regret per query at 100 / 300):", "",
          "| strategy | " + " | ".join(DATASET_NAMES[ds] for ds in DATASETS) + " |",
          "| --- |" + " --- |" * len(DATASETS)]
    for st in plan.strategies:
        L.append(f"| {st} | " + " | ".join(
            f"{s['by_dataset'][ds][st]['regret_query_100'][0]:.3f} / "
            f"{s['by_dataset'][ds][st]['regret_query_300'][0]:.3f}" for ds in DATASETS) + " |")
    L += ["", "## 4. Tests: rl against each strategy", "",
          "One-sided Wilcoxon signed-rank over the settings (one number per setting: the mean "
          "over its seeds), 'rl has lower regret'; Holm over all 30. Pooled Mann-Whitney U "
          "(runs as one population) beside it, secondary.", "",
          "| metric | budget | vs | settings | rl better / worse | p | p Holm | "
          "pooled p Holm |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in s["tests"]:
        L.append(f"| {t['metric']} | {t['budget']} | {t['b']} | {t['settings']} | "
                 f"{t['a_better']} / {t['b_better']} | {_p(t['p'])} | {_p(t['p_holm'])} | "
                 f"{_p(t['pooled_p_holm'])} |")
    L += ["", "![mean regret per query](nb201_rl.png)", ""]
    return L


def _rows(table: dict[str, Any], strategies: list[str]) -> list[str]:
    out = []
    for st in strategies:
        t = table[st]
        cells = [_fmt(t[f"regret_{v}_{b}"]) for v in VIEWS for b in P.KEY_BUDGETS]
        out.append(f"| {st} | " + " | ".join(cells) + f" | {t['hv2_query_300'][0]:.4f} | "
                   f"{t['hv3_query_300'][0]:.4f} | {t['mean_cpu_seconds']:.2f} |")
    return out


def _plot(s: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, view in zip(axes, VIEWS, strict=True):
        for st, c in s["curves"].items():
            y = np.array(c[view])
            ax.plot(np.arange(1, len(y) + 1), y, label=st, lw=2 if st == "rl" else 1)
        ax.set_yscale("log")
        ax.set_xlabel("queries" if view == "query" else "distinct architectures")
        ax.set_ylabel("mean regret (points)")
        ax.set_title(f"per {view}")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Phases: tune, freeze, run, report, pack (see the "
                                       "module docstring).")
    p.add_argument("phase", choices=("tune", "freeze", "run", "report", "pack"))
    p.add_argument("--data", default=str(DEFAULT_DATA), help="the NAS-Bench-201 folder")
    p.add_argument("--store", default=str(STORE), help="folder of the raw runs")
    p.add_argument("--out", default=str(OUT), help="report prefix (.json/.md/.png)")
    p.add_argument("--max-runs", type=int, default=None, help="stop after this many runs")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop starting runs after this many minutes")
    args = p.parse_args(argv)
    return run_main(lambda: _phase(args), also=(P.ProtocolError, FileNotFoundError))


def _phase(args: argparse.Namespace) -> int:
    if args.phase == "pack":
        return pack_phase(Path(args.store) / "reporting.jsonl", "reporting runs")
    data = Nb201Data(args.data)
    plan = Plan(prot.load_protocol(PROTOCOL), data.devices)
    if args.phase == "freeze":
        return phase_freeze(args, plan, data)
    if args.phase == "report":
        return phase_report(args, plan, data)
    import torch

    torch.set_num_threads(1)
    store_dir = Path(args.store)
    if args.phase == "tune":
        runs = plan.tuning()
        store = RunStore(store_dir / "tuning.jsonl")
        frozen_sha = None
    else:
        frozen = P.frozen_settings(store_dir)
        runs = plan.reporting(frozen)
        store = RunStore(store_dir / "reporting.jsonl")
        frozen_sha = frozen["sha256"]
    n = P.work(runs, store, data, max_runs=args.max_runs, max_minutes=args.max_minutes,
               frozen_sha256=frozen_sha, check=plan.check)
    left = len({s.key for s in runs} - store.done())
    print(f"{n} runs made; {left} of {len(runs)} left")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
