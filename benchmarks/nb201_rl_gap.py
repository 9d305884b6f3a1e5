"""Why ``rl`` trails first-improvement local search on NAS-Bench-201: where each strategy's
queries go, on the tuning setting only (issue 26 item 1).

What runs
---------
The NB201 protocol's tuning setting and nothing else (``nb201.protocol.TUNING_SETTING``:
Pixel 3 latency, CIFAR-10 accuracy, target = the 50th latency percentile; seeds 100-119,
refused otherwise by ``check_run``): ``rl``, ``local``, ``evolution`` and ``random`` with the
protocol's frozen options (``benchmarks/results/nb201_protocol/frozen.json``; ``local`` is
first-improvement local search), each through the protocol's own run
(:func:`nb201.protocol.tabular_search`: ``run_search``, tabular evaluator, hard reward, every
candidate evaluated), for ``QUERIES`` (300) queries. Nothing is tuned. Each stored run is
compared with the protocol's tuning record of the same key (the first query where they part,
if any), and every ``rl`` run is made a second time without the probe below: the two must
query the same cells (the probe only reads); the page says whether they do.

While ``rl`` runs, the controller object itself is read after every tell (the sampler that
``run_search`` builds is captured; nothing of the controller is re-implemented): its policy
scores all 15,625 cells, giving the exact entropy of its distribution over architectures
(divided by the 6 decisions: the mean per-decision entropy in nats, ln 5 = 1.609 for the
uniform first policy), the probability mass it puts on cells already told (what
``no_repeat`` has to redraw) and the expected edit distance of a draw to the incumbent.
Entry ``q`` is the distribution query ``q`` was drawn from.

Per query, from the queried NB201 indices and the tables:

* *distance to the incumbent*: the NB201 edit distance (how many of the 6 edges have another
  operation) between the proposal and the incumbent at that moment, the most accurate
  feasible cell among the earlier queries (the cell regret is measured by; ties: the
  earlier). Undefined before the first feasible query.
* *top 1% / top 5%*: whether the cell is among the best 1% / 5% of the feasible cells by
  the protocol's accuracy (NB201's 200-epoch CIFAR-10 test accuracy: the data hold no
  validation accuracy), ties at the cut included.
* *re-query*: the cell was queried before in this run.
* *infeasible*: the cell's latency is above the target.

Raw runs: ``benchmarks/results/nb201_rl_gap/traces.jsonl`` (:class:`nb201.store.RunStore`:
resumable, claims shared by processes). ``report`` writes ``benchmarks/results/
nb201_rl_gap.{json,md,png}`` from them alone.

Run::

    python benchmarks/nb201_rl_gap.py run       # 80 runs, ~12 min on a busy 2-core VM
    python benchmarks/nb201_rl_gap.py report
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from _shared import result_path, run_main
from mobile_nas.atomic import atomic_path, atomic_write_json, atomic_write_text
from mobile_nas.search.counting import best_so_far, repeat_flags
from nb201 import protocol as P
from nb201.data import DEFAULT_DATA, Nb201Data
from nb201.store import RunStore

SCHEMA_VERSION = 1
STORE = result_path("nb201_rl_gap")
OUT = result_path("nb201_rl_gap")
PROTOCOL_STORE = result_path("nb201_protocol")
STRATEGIES = ("rl", "local", "evolution", "random")
QUERIES = 300
BUDGETS = P.KEY_BUDGETS  # 100, 150, 300
ENTROPY_AT = (10, 50, 100, 300)
TOP_FRACTIONS = (0.01, 0.05)
WINDOW = 10  # queries per point of the distance curve


# -- metrics of one run -----------------------------------------------------------------------
def edge_ops(data: Nb201Data) -> np.ndarray:
    """The operation index of each of the 6 edges, per NB201 index (15,625 x 6)."""
    return np.array([data.space.decode(k).indices() for k in data.keys], dtype=np.int8)


def incumbents(indices: Sequence[int], acc: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """For each query, the NB201 index of the incumbent before it: the most accurate feasible
    cell among the earlier queries (ties: the earlier one); -1 while there is none."""
    out = np.full(len(indices), -1, dtype=int)
    best, best_acc = -1, -math.inf
    for t, i in enumerate(indices):
        out[t] = best
        if feasible[i] and acc[i] > best_acc:
            best, best_acc = int(i), float(acc[i])
    return out


def incumbent_distances(indices: Sequence[int], ops: np.ndarray, acc: np.ndarray,
                        feasible: np.ndarray) -> np.ndarray:
    """Each query's edit distance (edges whose operation differs) to the incumbent before
    it (:func:`incumbents`); NaN while there is none."""
    idx = np.asarray(indices, dtype=int)
    inc = incumbents(idx, acc, feasible)
    dist = (ops[idx] != ops[np.maximum(inc, 0)]).sum(axis=1).astype(float)
    return np.where(inc >= 0, dist, np.nan)


def top_cells(acc: np.ndarray, feasible: np.ndarray, fraction: float) -> np.ndarray:
    """Mask of the feasible cells among the best ``fraction`` of the feasible cells by
    accuracy (at least one cell; every cell tied with the last one counts)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    ok = np.asarray(feasible, dtype=bool)
    if not ok.any():
        return np.zeros(len(acc), dtype=bool)
    ranked = np.sort(np.asarray(acc)[ok])[::-1]
    cut = ranked[max(1, math.ceil(round(fraction * len(ranked), 9))) - 1]
    return ok & (np.asarray(acc) >= cut)


def top_share(indices: Sequence[int], mask: np.ndarray, budget: int) -> float:
    """The share of the first ``budget`` queries (repeats count) spent on cells of ``mask``."""
    first = np.asarray(indices[:budget], dtype=int)
    return float(mask[first].mean()) if len(first) else math.nan


def requeries(indices: Sequence[int], budget: int) -> int:
    """How many of the first ``budget`` queries asked for a cell queried before."""
    return int(sum(repeat_flags(list(indices[:budget]))))


# -- reading the controller during a run ------------------------------------------------------
class PolicyProbe:
    """The exact distribution of an ``rl`` controller over every architecture of its space,
    read from the controller object (its policy scores every cell; no sampling, no RNG)."""

    def __init__(self, strategy) -> None:
        import torch

        self.strategy = strategy
        sizes = [len(d) for d in strategy.space.decisions]
        self.actions = torch.tensor(list(itertools.product(*map(range, sizes))))
        self.radix = np.array([math.prod(sizes[i + 1:]) for i in range(len(sizes))])
        self._cached: tuple[int, np.ndarray] | None = None

    def _probabilities(self) -> np.ndarray:
        import torch

        updates = self.strategy.updates  # the policy changes only in an update
        if self._cached is None or self._cached[0] != updates:
            with torch.no_grad():
                _, logp, _ = self.strategy.policy(self.actions)
            self._cached = (updates, logp.double().exp().numpy())
        return self._cached[1]

    def read(self, centre: Sequence[int] | None = None) -> tuple[float, float, float]:
        """(mean per-decision entropy in nats, probability mass on cells already told,
        expected edit distance of a draw to ``centre`` (decision indices; NaN without))."""
        p = self._probabilities()
        entropy = float(-(p * np.log(np.maximum(p, 1e-300))).sum()) / len(self.radix)
        told = list(self.strategy.history)
        mass = float(p[np.asarray(told) @ self.radix].sum()) if told else 0.0
        distance = math.nan if centre is None else float(
            p @ (self.actions.numpy() != np.asarray(centre)).sum(axis=1))
        return entropy, mass, distance


@contextlib.contextmanager
def captured_strategies() -> Iterator[list]:
    """While open, every strategy that ``make_sampler`` (the one ``run_search`` calls) builds
    is appended to the yielded list."""
    import mobile_nas.search.sampler as sampler_module

    built: list = []
    original = sampler_module.make_sampler

    def capturing(*args, **kwargs):
        sampler = original(*args, **kwargs)
        built.append(getattr(sampler, "strategy", None))
        return sampler

    sampler_module.make_sampler = capturing
    try:
        yield built
    finally:
        sampler_module.make_sampler = original


# -- runs -------------------------------------------------------------------------------------
def plan(frozen: dict[str, Any]) -> list[P.RunSpec]:
    """Every run, seed-major, with the protocol's frozen options and tuning-record keys."""
    chosen = frozen["strategies"]
    return [P.RunSpec("tuning", P.TUNING_SETTING, s, int(chosen[s]["config"]),
                      json.dumps(chosen[s]["options"], sort_keys=True), seed)
            for seed in P.TUNING_SEEDS for s in STRATEGIES]


class ProbedLog(P.QueryLog):
    """The protocol's query log, plus, before each query, the ``rl`` controller's entropy,
    mass on told cells and expected distance of a draw to the incumbent (read through
    ``probe`` once it is set; the incumbent as in :func:`incumbents`)."""

    def __init__(self, index_of: dict[str, int], ops: np.ndarray, acc: np.ndarray,
                 feasible: np.ndarray) -> None:
        super().__init__(index_of)
        self.ops, self.acc, self.feasible = ops, acc, feasible
        self.incumbent = -1
        self.probe: PolicyProbe | None = None
        self.entropy: list[float] = []
        self.told_mass: list[float] = []
        self.policy_distance: list[float] = []

    def read(self) -> None:
        if self.probe is not None:
            centre = None if self.incumbent < 0 else self.ops[self.incumbent]
            e, m, d = self.probe.read(centre)
            self.entropy.append(e)
            self.told_mass.append(m)
            self.policy_distance.append(d)

    def on_trial(self, t: dict[str, Any]) -> None:
        super().on_trial(t)
        i = self.indices[-1]
        if self.feasible[i] and (self.incumbent < 0 or self.acc[i] > self.acc[self.incumbent]):
            self.incumbent = i
        self.read()  # after the tell: the distribution the next query is drawn from


def execute(spec: P.RunSpec, data: Nb201Data, ops: np.ndarray, frozen_sha256: str,
            protocol: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One run: its queried NB201 indices and, for ``rl``, what :class:`ProbedLog` reads
    before each query, and whether the same run unread queries the same cells."""
    P.check_run(spec.phase, spec.setting, spec.seed)
    acc = data.accuracy(spec.setting.dataset)
    feasible = data.latency(spec.setting.device) <= data.target_ms(spec.setting)
    log = ProbedLog(data.index_of, ops, acc, feasible)

    def enough() -> bool:  # run_search checks it before every trial, the first included
        if log.probe is None and built and getattr(built[0], "name", None) == "rl":
            log.probe = PolicyProbe(built[0])
            log.read()  # the first policy, before any query
        return len(log.indices) >= QUERIES

    def search(query_log: P.QueryLog, stop_when) -> None:
        P.tabular_search(data.bench(spec.setting), query_log, strategy=spec.strategy,
                         target_ms=data.target_ms(spec.setting), reward=P.REWARD,
                         seed=spec.strategy_seed, options=spec.options,
                         query_cap=QUERIES, stop_when=stop_when)

    t0, c0 = time.perf_counter(), time.process_time()
    with captured_strategies() as built:
        search(log, enough)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    stored = protocol.get(spec.key)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "key": spec.key, "setting": spec.setting.key,
        "target_ms": data.target_ms(spec.setting), "strategy": spec.strategy,
        "config": spec.config, "options": spec.options, "seed": spec.seed,
        "strategy_seed": spec.strategy_seed, "frozen_sha256": frozen_sha256,
        "indices": log.indices,
        "protocol_match": None if stored is None
        else stored["indices"][:QUERIES] == log.indices,
        "protocol_first_difference": None if stored is None else next(
            (k + 1 for k, (a, b) in enumerate(zip(stored["indices"], log.indices, strict=False))
             if a != b), None),
        "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if log.probe is not None:
        plain = P.QueryLog(data.index_of)  # the same run, nothing read: the probe is passive
        search(plain, lambda: len(plain.indices) >= QUERIES)
        record["unprobed_match"] = plain.indices == log.indices
        record["entropy"] = [round(v, 6) for v in log.entropy[:QUERIES]]
        record["told_mass"] = [round(v, 6) for v in log.told_mass[:QUERIES]]
        record["policy_distance"] = [None if math.isnan(v) else round(v, 6)
                                     for v in log.policy_distance[:QUERIES]]
    return record


def phase_run(args, data: Nb201Data) -> int:
    import torch

    torch.set_num_threads(1)
    frozen = P.frozen_settings(Path(args.protocol))
    protocol = {r["key"]: r for r in
                P.checked_records(RunStore(Path(args.protocol) / "tuning.jsonl"), "tuning")}
    runs = plan(frozen)
    ops = edge_ops(data)
    store = RunStore(Path(args.store) / "traces.jsonl")
    deadline = None if args.max_minutes is None else time.time() + 60 * args.max_minutes
    n = 0
    while deadline is None or time.time() < deadline:
        spec = store.claim_next(runs)
        if spec is None:
            break
        try:
            record = execute(spec, data, ops, frozen["sha256"], protocol)
        except BaseException:
            store.release(spec.key)
            raise
        store.append(record)
        n += 1
        print(f"{spec.key}: {record['seconds']:.1f} s, same cells as the protocol run: "
              f"{record['protocol_match']}, as unprobed: "
              f"{record.get('unprobed_match', '-')} ({len(runs) - len(store.done())} left)",
              flush=True)
    print(f"{n} runs made; {len({r.key for r in runs} - store.done())} of {len(runs)} left")
    return 0


# -- report -----------------------------------------------------------------------------------
def run_metrics(record: dict[str, Any], data: Nb201Data, ops: np.ndarray,
                masks: dict[float, np.ndarray]) -> dict[str, Any]:
    """Every per-run number of the page, from one stored run."""
    setting = P.Setting.from_key(record["setting"])
    acc = data.accuracy(setting.dataset)
    feasible = data.latency(setting.device) <= data.target_ms(setting)
    idx = list(record["indices"])
    dist = incumbent_distances(idx, ops, acc, feasible)
    rep = repeat_flags(idx)
    _, opt = data.optimum(setting)
    best = np.nan_to_num(best_so_far(acc[idx], feasible[idx], rep, view="query"), nan=0.0)
    out: dict[str, Any] = {"key": record["key"], "strategy": record["strategy"],
                           "seed": record["seed"], "queries": len(idx),
                           "protocol_match": record["protocol_match"],
                           "unprobed_match": record.get("unprobed_match"),
                           "distance": [None if math.isnan(d) else int(d) for d in dist]}
    for b in BUDGETS:
        d = dist[:b][~np.isnan(dist[:b])]
        out[f"median_distance_{b}"] = float(np.median(d)) if len(d) else math.nan
        out[f"distance1_share_{b}"] = float((d == 1).mean()) if len(d) else math.nan
        for f, mask in masks.items():
            out[f"top{_pct(f)}_share_{b}"] = top_share(idx, mask, b)
        out[f"requeries_{b}"] = requeries(idx, b)
        out[f"infeasible_share_{b}"] = float((~feasible[idx[:b]]).mean())
        out[f"regret_{b}"] = 100.0 * (opt - float(best[b - 1]))
    if "entropy" in record:
        for q in ENTROPY_AT:
            out[f"entropy_{q}"] = record["entropy"][q - 1]
            out[f"told_mass_{q}"] = record["told_mass"][q - 1]
            pd = record["policy_distance"][q - 1]
            out[f"policy_distance_{q}"] = math.nan if pd is None else pd
            window = dist[max(0, q - WINDOW):q]
            out[f"proposal_distance_{q}"] = float(np.nanmean(window)) \
                if (~np.isnan(window)).any() else math.nan
    return out


def _se_diff(a: dict[str, Any], b: dict[str, Any], key: str) -> float:
    """The standard error of the difference of two strategies' means of ``key``."""
    return math.hypot(a[key]["se"], b[key]["se"])


def _nanmedian(rows: np.ndarray) -> list[float]:
    """Column medians ignoring NaN (NaN for a column of NaN only, without a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(rows, axis=0).tolist()


def _pct(fraction: float) -> str:
    return f"{100 * fraction:g}"


def _stats(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if not len(v):
        return {k: math.nan for k in ("mean", "se", "median", "q25", "q75")}
    return {"mean": float(v.mean()),
            "se": float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan,
            "median": float(np.median(v)), "q25": float(np.percentile(v, 25)),
            "q75": float(np.percentile(v, 75))}


def entropy_floor(tanh_c: float, choices: int) -> float:
    """The lowest per-decision entropy (nats) of a policy whose logits are squashed into
    [-tanh_c, tanh_c]: one choice at the top, the others at the bottom."""
    logits = np.array([tanh_c] + [-tanh_c] * (choices - 1))
    p = np.exp(logits) / np.exp(logits).sum()
    return float(-(p * np.log(p)).sum())


def summarize(records: Sequence[dict[str, Any]], data: Nb201Data) -> dict[str, Any]:
    """Per-run metrics, per-strategy statistics and the curves of the plot."""
    setting = P.TUNING_SETTING
    acc = data.accuracy(setting.dataset)
    feasible = data.latency(setting.device) <= data.target_ms(setting)
    ops = edge_ops(data)
    masks = {f: top_cells(acc, feasible, f) for f in TOP_FRACTIONS}
    runs = [run_metrics(r, data, ops, masks) for r in records
            if len(r["indices"]) == QUERIES]
    table: dict[str, dict[str, Any]] = {}
    curves: dict[str, dict[str, Any]] = {}
    for s in STRATEGIES:
        mine = [m for m in runs if m["strategy"] == s]
        if not mine:
            continue
        keys = [k for k in mine[0] if k.rsplit("_", 1)[-1].isdigit()]
        table[s] = {"runs": len(mine), **{k: _stats([m[k] for m in mine]) for k in keys}}
        dist = np.array([[math.nan if d is None else d for d in m["distance"]]
                         for m in mine], dtype=float)
        with warnings.catch_warnings():  # a window before the first feasible query: NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            windows = np.nanmean(dist.reshape(len(mine), -1, WINDOW), axis=2)
            windows_median = np.nanmedian(windows, axis=0).tolist()
        idx = np.array([r["indices"] for r in records if r["strategy"] == s
                        and len(r["indices"]) == QUERIES])
        curves[s] = {
            "distance_window_median": windows_median,
            "distance_window_q25": np.nanpercentile(windows, 25, axis=0).tolist(),
            "distance_window_q75": np.nanpercentile(windows, 75, axis=0).tolist(),
            "top5_cumulative_share": (np.cumsum(masks[0.05][idx], axis=1)
                                      / np.arange(1, QUERIES + 1)).mean(axis=0).tolist()}
        ent = [r["entropy"] for r in records if r["strategy"] == s and "entropy" in r]
        if ent:
            told = np.array([r["told_mass"] for r in records
                             if r["strategy"] == s and "told_mass" in r])
            curves[s] |= {"entropy_median": np.median(ent, axis=0).tolist(),
                          "entropy_q25": np.percentile(ent, 25, axis=0).tolist(),
                          "entropy_q75": np.percentile(ent, 75, axis=0).tolist(),
                          "told_mass_median": np.median(told, axis=0).tolist(),
                          "policy_distance_median": _nanmedian(np.array(
                              [[math.nan if v is None else v for v in r["policy_distance"]]
                               for r in records if r["strategy"] == s and "entropy" in r],
                              dtype=float))}
    from mobile_nas.search.strategy import make_strategy

    rl_options = next((r["options"] for r in records if r["strategy"] == "rl"), {})
    tanh_c = make_strategy("rl", space=data.space, seed=0, **rl_options).hparams["tanh_c"]
    return {"schema_version": SCHEMA_VERSION, "setting": setting.key,
            "target_ms": data.target_ms(setting), "feasible_cells": int(feasible.sum()),
            "top_cells": {_pct(f): int(m.sum()) for f, m in masks.items()},
            "uniform_entropy": math.log(5), "rl_tanh_c": tanh_c,
            "entropy_floor": entropy_floor(tanh_c, 5), "queries": QUERIES,
            "budgets": list(BUDGETS),
            "entropy_at": list(ENTROPY_AT), "window": WINDOW,
            "protocol_matches": sum(bool(m["protocol_match"]) for m in runs),
            "probed_runs": sum(m["unprobed_match"] is not None for m in runs),
            "unprobed_matches": sum(bool(m["unprobed_match"]) for m in runs),
            "protocol_mismatches": [
                {"strategy": m["strategy"], "seed": m["seed"],
                 "first_difference": _first_difference(m, records),
                 "unprobed_match": m["unprobed_match"]}
                for m in sorted(runs, key=lambda m: (m["strategy"], m["seed"]))
                if not m["protocol_match"]],
            "runs": len(runs), "seeds": sorted({m["seed"] for m in runs}),
            "table": table, "curves": curves,
            "per_run": [{k: v for k, v in m.items() if k != "distance"} for m in runs]}


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    w = summary["window"]
    x = np.arange(w, summary["queries"] + 1, w) - (w - 1) / 2
    for s, c in summary["curves"].items():
        line, = axes[0].plot(x, c["distance_window_median"], label=s)
        axes[0].fill_between(x, c["distance_window_q25"], c["distance_window_q75"],
                             color=line.get_color(), alpha=0.15)
        axes[1].plot(np.arange(1, summary["queries"] + 1),
                     100 * np.asarray(c["top5_cumulative_share"]), label=s)
    if "policy_distance_median" in summary["curves"].get("rl", {}):
        axes[0].plot(np.arange(1, summary["queries"] + 1),
                     summary["curves"]["rl"]["policy_distance_median"], color="C0",
                     linestyle="--", linewidth=1,
                     label="rl: expected distance of a policy draw (median)")
    axes[0].set_ylabel("edit distance to the incumbent (edges)")
    axes[0].set_title(f"distance to the incumbent ({w}-query means; median, IQR over "
                      f"seeds)", fontsize=9)
    axes[1].set_ylabel("% of queries so far in the top 5% of feasible cells")
    axes[1].set_title("share of queries in the top 5% (mean over seeds)", fontsize=9)
    rl = summary["curves"].get("rl", {})
    q = np.arange(1, summary["queries"] + 1)
    if "entropy_median" in rl:
        axes[2].plot(q, rl["entropy_median"], color="C0", label="entropy (median)")
        axes[2].fill_between(q, rl["entropy_q25"], rl["entropy_q75"], color="C0",
                             alpha=0.15)
        axes[2].axhline(summary["uniform_entropy"], color="grey", linestyle=":",
                        label="uniform (ln 5)")
        twin = axes[2].twinx()
        twin.plot(q, rl["told_mass_median"], color="C3", linestyle="--",
                  label="mass on told cells (median)")
        twin.set_ylabel("policy probability on cells already told", color="C3")
        twin.set_ylim(0, 1)
        twin.legend(loc="center right", fontsize=8)
    axes[2].set_ylabel("mean per-decision entropy (nats)")
    axes[2].set_ylim(0, 1.7)
    axes[2].set_title("rl: entropy of the distribution each query is drawn from",
                      fontsize=9)
    axes[2].legend(loc="upper right", fontsize=8)
    for ax in axes:
        ax.set_xlabel("queries")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"NAS-Bench-201 tuning setting ({summary['setting']}), seeds "
                 f"{summary['seeds'][0]}-{summary['seeds'][-1]}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _first_difference(m: dict[str, Any], records: Sequence[dict[str, Any]]) -> int | None:
    """The first query (1-based) where a run parts from its protocol record (None: it
    does not); set on the records by :func:`execute` as ``protocol_first_difference``."""
    rec = next(r for r in records if r["key"] == m["key"])
    return rec.get("protocol_first_difference")


def _mismatch_words(s: dict[str, Any]) -> str:
    bad = s["protocol_mismatches"]
    if not bad:
        return ""
    runs = ", ".join(f"`{b['strategy']}` seed {b['seed']} from query {b['first_difference']}"
                     for b in bad)
    if all(b["unprobed_match"] for b in bad):
        return (f"; the others part from it after some queries ({runs}), and the same run "
                "without the "
                "probe parts from it in the same way: not the probe, most likely "
                "floating-point differences between this machine (CPU, torch build) and "
                "the one that recorded the protocol")
    return f"; the others part from it ({runs})"


def _cell(st: dict[str, float], digits: int = 2, scale: float = 1.0) -> str:
    if math.isnan(st["mean"]):
        return "-"
    m, se = scale * st["mean"], scale * st["se"]
    return f"{m:.{digits}f}" if math.isnan(se) else f"{m:.{digits}f} ± {se:.{digits}f}"


def _iqr(st: dict[str, float], digits: int = 2) -> str:
    return f"{st['median']:.{digits}f} [{st['q25']:.{digits}f}, {st['q75']:.{digits}f}]"


def markdown(s: dict[str, Any]) -> str:
    t = s["table"]
    lines = [
        "# Why `rl` trails local search on NAS-Bench-201: where the queries go",
        "",
        "Generated by `benchmarks/nb201_rl_gap.py report` from the raw runs in "
        "`benchmarks/results/nb201_rl_gap/traces.jsonl` (nothing here is edited by hand). "
        "Issue 26, item 1: analysis only, nothing tuned.",
        "",
        "## What was run",
        "",
        f"- The NB201 protocol's tuning setting only: `{s['setting']}` (Pixel 3 latency, "
        f"CIFAR-10 accuracy, target {s['target_ms']:.3f} ms = the median latency; "
        f"{s['feasible_cells']:,} of 15,625 cells feasible), seeds "
        f"{s['seeds'][0]}-{s['seeds'][-1]}, {QUERIES} queries per run; "
        f"{', '.join(f'`{x}`' for x in t)} with the protocol's frozen options (`local`: "
        "first improvement), through the protocol's run (`run_search`, tabular evaluator, "
        "hard reward, every candidate evaluated).",
        f"- {s['protocol_matches']} of {s['runs']} runs queried exactly the cells of the "
        "protocol's stored tuning run of the same key in their first 300 queries"
        + _mismatch_words(s)
        + f". Every `rl` run was made twice, with and without the probe: "
        f"{s['unprobed_matches']} of {s['probed_runs']} queried the same cells (the "
        "probe reads the controller and changes nothing).",
        "- *Distance to the incumbent*: edges (of 6) whose operation differs between a "
        "proposal and the most accurate feasible cell queried before it (undefined before "
        "the first feasible query). A uniformly random cell is 4.8 edges away on average.",
        f"- *Top 1% / 5%*: the best {s['top_cells']['1']} / {s['top_cells']['5']} feasible "
        "cells by the protocol's accuracy (NB201 200-epoch CIFAR-10 test accuracy; the data "
        "hold no validation accuracy). Share of the first *b* queries spent on them "
        "(repeats count).",
        "- *Entropy*: the `rl` controller's exact distribution over all 15,625 cells, read "
        "from the controller object after every tell (its policy scores every cell): "
        "entropy / 6 decisions, in nats (uniform: ln 5 = 1.609); *told mass* = the "
        "probability it gives cells already told (draws that `no_repeat` throws away). "
        "Entry *q* is the distribution query *q* was drawn from.",
        "- Mean ± standard error over the seeds, unless marked median [IQR].",
        "",
        "## Where the queries go",
        "",
        "| strategy | b | median distance to incumbent | share at distance 1 | top-1% share "
        "(%) | top-5% share (%) | re-queries | infeasible share (%) | regret (points) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in t.items():
        for b in s["budgets"]:
            lines.append(
                f"| {name} | {b} | {_iqr(row[f'median_distance_{b}'], 1)} | "
                f"{_cell(row[f'distance1_share_{b}'])} | "
                f"{_cell(row[f'top1_share_{b}'], 1, 100)} | "
                f"{_cell(row[f'top5_share_{b}'], 1, 100)} | "
                f"{_cell(row[f'requeries_{b}'], 1)} | "
                f"{_cell(row[f'infeasible_share_{b}'], 1, 100)} | "
                f"{_cell(row[f'regret_{b}'], 3)} |")
    if "rl" in t and "entropy_10" in t["rl"]:
        lines += ["", "## How fast the controller's entropy collapses (`rl`)", "",
                  f"Uniform: ln 5 = {s['uniform_entropy']:.3f} nats per decision; the "
                  f"lowest the controller can reach (its logits squashed into "
                  f"[-{s['rl_tanh_c']:g}, {s['rl_tanh_c']:g}]): {s['entropy_floor']:.3f}.",
                  "",
                  "*Policy draw distance*: the expected edit distance to the incumbent of a "
                  "cell drawn from the controller's distribution (before `no_repeat` "
                  f"rejects told cells); *proposal distance*: the mean distance of the "
                  f"cells actually asked in the {s['window']} queries up to this one. "
                  "Medians [IQR] over the seeds.",
                  "",
                  "| query | mean per-decision entropy (nats) | share of uniform | "
                  "told mass | policy draw distance | proposal distance |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for q in s["entropy_at"]:
            e = t["rl"][f"entropy_{q}"]
            lines.append(f"| {q} | {_iqr(e, 3)} | {e['median'] / s['uniform_entropy']:.2f} "
                         f"| {_iqr(t['rl'][f'told_mass_{q}'], 3)} "
                         f"| {_iqr(t['rl'][f'policy_distance_{q}'])} "
                         f"| {_iqr(t['rl'][f'proposal_distance_{q}'])} |")
    lines += ["", "![distance, top-5% share, entropy](nb201_rl_gap.png)", "",
              "## What the figures suggest (hypotheses, not conclusions)", ""]
    lines += reading(s)
    return "\n".join(lines) + "\n"


def reading(s: dict[str, Any]) -> list[str]:
    """The page's reading of the figures, its numbers taken from the summary."""
    t = s["table"]
    if not {"rl", "local", "random"} <= set(t) or "entropy_10" not in t["rl"]:
        return ["(`rl`, `local` and `random` runs are needed for a reading.)"]
    rl, lo, rnd = t["rl"], t["local"], t["random"]

    def med(row, k):
        return row[k]["median"]

    def pct(row, k):
        return 100 * row[k]["mean"]

    def mean(row, k):
        return row[k]["mean"]

    def more(a: float, b: float) -> str:
        return "more" if a > b else "less"

    ent = {q: med(rl, f"entropy_{q}") for q in s["entropy_at"]}
    told = {q: med(rl, f"told_mass_{q}") for q in s["entropy_at"]}
    pdist = {q: med(rl, f"policy_distance_{q}") for q in s["entropy_at"]}
    prop = {q: med(rl, f"proposal_distance_{q}") for q in s["entropy_at"]}
    gap = {b: mean(rl, f"regret_{b}") - mean(lo, f"regret_{b}") for b in s["budgets"]}
    widest = max(gap, key=lambda b: gap[b])
    curve = np.asarray(s["curves"]["rl"]["entropy_median"])
    fall = s["uniform_entropy"] - curve[-1]
    half = int(np.argmax(curve <= s["uniform_entropy"] - 0.5 * fall)) + 1
    ninety = int(np.argmax(curve <= s["uniform_entropy"] - 0.9 * fall)) + 1
    return [
        "- **Where the gap is.** Mean regret of `rl` minus `local`: "
        + ", ".join(f"{gap[b]:+.3f} points at {b}" for b in s["budgets"])
        + f" queries; it is widest at {widest}. In standard errors of the difference "
        "(seeds unpaired): "
        + ", ".join(f"{gap[b] / _se_diff(rl, lo, f'regret_{b}'):.1f} at {b}"
                    for b in s["budgets"])
        + (". On this one setting the gap is within the noise of 20 seeds (the issue's "
           "gap is over the 105 reporting settings): what follows is how the two search "
           "differently, the mechanism a gap over many settings would come from, not a "
           "measured cause of it." if max(gap[b] / _se_diff(rl, lo, f"regret_{b}")
                                          for b in s["budgets"]) < 2 else "."),
        f"- **Locality.** Over the first 100 queries `local` asks cells next to the "
        f"incumbent: {pct(lo, 'distance1_share_100'):.0f}% of its proposals are one edge "
        f"from it (median distance {med(lo, 'median_distance_100'):.0f}). `rl`'s median "
        f"distance is {med(rl, 'median_distance_100'):.0f}, with "
        f"{pct(rl, 'distance1_share_100'):.0f}% at one edge ({pct(rl, 'distance1_share_300'):.0f}"
        f"% over 300 queries; `random`: {med(rnd, 'median_distance_100'):.0f}, 4.8 on "
        f"average). Over 300 queries `local`'s median distance to the incumbent becomes "
        f"{med(lo, 'median_distance_300'):.0f}: after a local optimum it restarts from a "
        "random cell and climbs there, so its queries are local to its current cell, not "
        "to the best one.",
        f"- **Queries in the top cells.** In the first 100 queries `local` spends "
        f"{pct(lo, 'top5_share_100'):.1f}% of them in the top 5% of feasible cells, `rl` "
        f"{pct(rl, 'top5_share_100'):.1f}% (`random` {pct(rnd, 'top5_share_100'):.1f}%); by "
        f"300, `rl` {pct(rl, 'top5_share_300'):.1f}% against `local`'s "
        f"{pct(lo, 'top5_share_300'):.1f}%, and in the top 1% `rl` "
        f"{pct(rl, 'top1_share_300'):.1f}% against {pct(lo, 'top1_share_300'):.1f}%. "
        + ("Once the controller has narrowed, its queries are about as good as local "
           "search's; it gets there later, and the regret gap follows."
           if pct(rl, "top5_share_300") >= 0.9 * pct(lo, "top5_share_300") else
           "Even narrowed, the controller's queries stay below local search's."),
        f"- **The controller is not centred on the incumbent.** A cell drawn from its "
        f"distribution is expected {pdist[50]:.1f} / {pdist[100]:.1f} / {pdist[300]:.1f} "
        f"edges from the incumbent at queries 50 / 100 / 300 (medians), while "
        f"{told[100]:.2f} / {told[300]:.2f} of its mass at 100 / 300 is on cells already "
        "told: the mass sits on the told elite as a whole (the elite update fits a "
        "weighted blend of the best 5% of every cell told), not on the best cell. The "
        f"cells it actually asks are further still ({prop[100]:.1f} / {prop[300]:.1f} "
        "edges, mean of the 10 queries up to 100 / 300): `no_repeat` discards the draws "
        "of told cells, so the fresh ones come from the tail of the distribution. "
        "**Points to:** proposals as edits of the elite (a policy over "
        "mutations of the incumbent, \"controller proposes, local search refines\"), "
        "which makes one edge from the best cell the default step instead of a rare one.",
        f"- **Entropy.** Uniform ({ent[10]:.2f} nats per decision) until the first update "
        f"after 10 tells, then {ent[50]:.2f} at query 50, {ent[100]:.2f} at 100 and "
        f"{ent[300]:.2f} at 300 (medians; {ent[50] / s['uniform_entropy']:.0%}, "
        f"{ent[100] / s['uniform_entropy']:.0%} and {ent[300] / s['uniform_entropy']:.0%} "
        f"of uniform; the floor its logit squash allows is {s['entropy_floor']:.2f}). Half "
        f"of the fall from uniform to the value at query 300 is done by query "
        f"{half}, 90% by query {ninety}. At query 50 a draw is still expected "
        f"{pdist[50]:.1f} edges from the incumbent (a random cell: 4.8), while `local` "
        "climbs from its first query. **Points to:** an entropy or temperature "
        "schedule that sharpens earlier would test whether slow narrowing costs the "
        "early queries; by the reading above it would sharpen around the blend, so it is "
        "the second candidate, not the first.",
        f"- **Infeasible cells.** Share of the first 100 queries beyond the latency "
        f"target: `rl` {pct(rl, 'infeasible_share_100'):.0f}%, `local` "
        f"{pct(lo, 'infeasible_share_100'):.0f}%, `random` "
        f"{pct(rnd, 'infeasible_share_100'):.0f}% (over 300: "
        f"{pct(rl, 'infeasible_share_300'):.0f}% / {pct(lo, 'infeasible_share_300'):.0f}% / "
        f"{pct(rnd, 'infeasible_share_300'):.0f}%). `rl` spends "
        f"{more(pct(rl, 'infeasible_share_300'), pct(lo, 'infeasible_share_300'))} of its "
        "budget than `local` on cells that cannot lower regret, and learns the target "
        "only through the hard reward. **Points to:** not spending queries on infeasible "
        "architectures (their latency is known before they are evaluated; `tell` of "
        "skipped candidates exists) or conditioning on the target; the difference to "
        f"`local` is {pct(rl, 'infeasible_share_300') - pct(lo, 'infeasible_share_300'):.0f}"
        " points of the budget.",
        f"- **Re-queries.** `rl` re-queries {mean(rl, 'requeries_100'):.1f} / "
        f"{mean(rl, 'requeries_300'):.1f} cells in 100 / 300 queries (a repeat only when "
        f"100 draws find nothing new), `local` {mean(lo, 'requeries_300'):.1f}, "
        f"`evolution` {t['evolution']['requeries_300']['mean']:.1f} of 300 "
        "(`evolution`, `random`: for scale). Re-queries do not explain the gap to `local`.",
        "- Not addressed by these figures: PPO with a learned baseline and conditioning "
        "one controller on several targets; the figures neither support nor rule them "
        "out.",
        "- These are readings of one setting and 20 seeds, meant to choose which "
        "controller variants item 2 tries first; none of them is tested here.",
    ]


def phase_report(args, data: Nb201Data) -> int:
    records = RunStore(Path(args.store) / "traces.jsonl").records()
    if not records:
        print(f"error: no runs in {args.store}: run 'run' first", file=sys.stderr)
        return 2
    summary = summarize(records, data)
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), summary)
    atomic_write_text(out.with_suffix(".md"), markdown(summary))
    _plot(summary, out.with_suffix(".png"))
    print(f"wrote {out}.json, .md, .png ({summary['runs']} runs)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=("run", "report"))
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--store", default=str(STORE), help="folder of the raw runs")
    p.add_argument("--protocol", default=str(PROTOCOL_STORE),
                   help="the NB201 protocol's store (frozen.json, tuning.jsonl)")
    p.add_argument("--out", default=str(OUT), help="report prefix (.json/.md/.png)")
    p.add_argument("--max-minutes", type=float, default=None)
    args = p.parse_args(argv)
    return run_main(lambda: _phase(args), also=(P.ProtocolError, FileNotFoundError))


def _phase(args: argparse.Namespace) -> int:
    data = Nb201Data(args.data)
    return phase_run(args, data) if args.phase == "run" else phase_report(args, data)


if __name__ == "__main__":
    raise SystemExit(main())
