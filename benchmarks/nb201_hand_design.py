"""Search against a hand design on real devices, exactly: as accurate as NAS-Bench-201's
ResNet cell, how much faster? (issue 25 item 5)

Protocol (written down and committed before the first full run)
---------------------------------------------------------------
Data: ``../shared/data/nb201`` (read, never copied; SOURCE.md): NAS-Bench-201's 200-epoch
accuracy of all 15,625 cells on CIFAR-10, CIFAR-100 and ImageNet16-120, and the batch-1
latency of every cell on the 12 devices there (HW-NAS-Bench / HELP). Exact table lookups,
nothing trained or timed here.

Reference: the hand-designed ResNet cell of NAS-Bench-201,
``|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|``,
index 11472 (checked against ``archs.txt`` at every run). The data give it 93.91 / 70.89 /
44.23 (CIFAR-10 / CIFAR-100 / ImageNet16-120). The NAS-Bench-201 paper's "ResNet" row
(Dong & Yang, ICLR 2020, Table 5) prints 93.97 / 70.86 / 43.63 test and 90.83 / 70.42 /
44.53 validation. The data are test accuracies of the 200-epoch schedule (not validation:
CIFAR-10 validation accuracies in NB201 come from training on 25k images and sit near 90-91%;
not the 12-epoch schedule, which gives far lower figures); the 0.06 / 0.03 / 0.60-point
differences are most likely the number of trained seeds averaged (the paper's table was
made with the first benchmark file, in which many cells were trained once or twice; the
data are NATS-Bench's means over all trained seeds). The report prints both.

How accuracy is chosen (decided before any run):

* The issue asks for validation accuracy for every search decision and test accuracy only
  for reporting. **The data hold no validation accuracy**: ``accuracy.csv`` has the test
  columns only (SOURCE.md), and its upstream table (v-tao/nats-bench-landscape
  ``nats_bench.csv``) has the same three test columns; the full NATS-Bench file is not
  available here. So the searches below decide on the dataset's 200-epoch *test* accuracy
  (the benchmark's only accuracy), as the project's other NB201 benchmarks do, and the
  "found cell" is chosen by the same column. The figures are therefore what a search with
  an exact, noise-free accuracy oracle finds in the table: an upper bound for a search that
  decides on noisy validation accuracy, and no evidence that a found cell generalizes
  better than the ResNet cell. The page says so.
* **The transfer is the held-out part**: searches that decide on CIFAR-10 accuracy only;
  their CIFAR-10 pick's CIFAR-100 and ImageNet16-120 accuracies are reported and were never
  used for any choice.

What is measured, per device, dataset and strategy, over seeds 0-19:

* a run makes ``QUERIES`` = 150 queries (repeats count; the queried NB201 indices are
  stored);
* its *pick*: the fastest cell among those it queried whose accuracy is at least the ResNet
  cell's on that dataset (ties: the more accurate, then the lower index), and its
  *speed-up* = ResNet cell's latency / pick's latency on that device (below 1 when every
  such cell found is slower than the ResNet cell; 0 when the run found none: such runs
  count as 0 in the median and are reported as "found k of 20");
* next to it, the *best possible* speed-up: the same rule over all 15,625 cells
  (exhaustive);
* median and spread (interquartile range and range) over the 20 seeds.

Strategies (the project's, run through ``mobile-nas search``'s code path on the tabular
benchmark, :func:`nb201.protocol.tabular_search`; options: the frozen ones of the NB201
protocol, ``benchmarks/results/nb201_protocol/frozen.json``, tuned on Pixel 3 / CIFAR-10
only, its sha256 recorded in every run):

* ``local`` and ``rl`` under a latency target: the target is **the ResNet cell's own
  latency on that device** ("as fast as the hand design"), MnasNet's hard reward (the
  target is a budget), one run of 150 queries;
* ``motpe`` (multi-objective TPE, ``tpe``'s frozen options) and ``nsga2``: accuracy and
  latency as two objectives, the same target (the ResNet cell's latency) as a constraint;
* ``rl-sweep``: ``rl`` with MnasNet's soft reward once per target at the 25th, 50th and 75th
  percentile of the device's latency over all cells, 50 queries each, interleaved (the NB201
  protocol's multi-objective sweep; it does not know the reference);
* ``random`` (uniform sampling, 150 queries) as the baseline every search must beat.

The strategy's seed is derived from (device, dataset, seed) (sha256), the same for every
strategy of one (device, dataset, seed) and independent across them.

Transfer: from every CIFAR-10 run, its CIFAR-10 pick; reported: that cell's CIFAR-100 and
ImageNet16-120 accuracy and its speed-up on the device, next to the ResNet cell's accuracy
on that dataset and the frontier's (the best accuracy of any cell at most as slow as the
pick), and how many picks are at least as accurate as the ResNet cell there.

Storage: raw runs are JSON lines (``benchmarks/results/nb201_hand_design/runs.jsonl``,
:class:`nb201.store.RunStore`: appended under a lock, claims shared by processes, a killed
run is redone, a rerun skips stored runs; ``pack`` moves them into a gzip part before they
are committed). ``report`` writes ``benchmarks/results/nb201_hand_design.{json,md,png}``
from the stored runs alone and refuses a run outside this protocol (strategy, seed, device,
dataset, budget, frozen options).

Changes after the first run are listed in ``CHANGES`` (and on the page).

Run::

    python benchmarks/nb201_hand_design.py run [--max-minutes M]   # resumable, shareable
    python benchmarks/nb201_hand_design.py pack                    # before committing runs
    python benchmarks/nb201_hand_design.py report
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from _shared import machine_facts, result_path, run_main
from mobile_nas.atomic import atomic_path, atomic_write_json, atomic_write_text
from mobile_nas.search.comparison import compare_pairs, with_holm
from mobile_nas.search.counting import repeat_flags
from nb201 import protocol as NP
from nb201.data import DATASET_NAMES, DATASETS, DEFAULT_DATA, Nb201Data
from nb201.store import RunStore, pack_phase

STORE = result_path("nb201_hand_design")
OUT = result_path("nb201_hand_design")
FROZEN = result_path("nb201_protocol") / "frozen.json"

SCHEMA_VERSION = 1
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
RESNET_INDEX = 11472
#: the data's figures (percent), checked by the report against the table
RESNET_EXPECTED = {"cifar10_test": 93.91, "cifar100_test": 70.89, "imagenet16_test": 44.23}
#: NAS-Bench-201 paper, Table 5, "ResNet" row (percent), quoted for comparison
RESNET_PAPER = {"test": {"cifar10_test": 93.97, "cifar100_test": 70.86,
                         "imagenet16_test": 43.63},
                "valid": {"cifar10_test": 90.83, "cifar100_test": 70.42,
                          "imagenet16_test": 44.53}}
STRATEGIES = ("random", "local", "rl", "motpe", "nsga2", "rl-sweep")
#: the strategy of frozen.json whose options each runs with
FROZEN_AS = {"random": "random", "local": "local", "rl": "rl", "motpe": "tpe",
             "nsga2": "nsga2", "rl-sweep": "rl"}
SEEDS = tuple(range(20))
QUERIES = 150
REWARD = "hard"
SWEEP_PERCENTILES = (25, 50, 75)
SWEEP_REWARD = "soft"
TRANSFER_FROM = "cifar10_test"
TRANSFER_TO = ("cifar100_test", "imagenet16_test")


#: Every change after the first run, stated on the page.
CHANGES = (
    "2026-12-07, after about 1,100 of the 4,320 runs, seen in a report of the runs so far: "
    "the page also counts the runs whose pick is strictly faster than the ResNet cell (a "
    "speed-up above 1: the search beat the hand design) and adds an exploratory test, not "
    "planned before the runs: per dataset, each strategy against `random` by a one-sided "
    "Wilcoxon signed-rank test over the 12 devices (one mean speed-up per device), Holm "
    "over the 15 comparisons, with the pooled Mann-Whitney test beside it "
    "(mobile_nas.search.comparison). No run, pick or speed-up changed.",
)


class HandDesignError(Exception):
    """A run or record outside this protocol."""


# -- the exact quantities --------------------------------------------------------------------
def pick_at_reference(indices: Sequence[int], acc: np.ndarray, lat: np.ndarray,
                      ref: int) -> int | None:
    """The fastest cell of ``indices`` whose accuracy is at least ``acc[ref]`` (ties: the
    more accurate, then the lower index); None if there is none."""
    ok = sorted({int(i) for i in indices if acc[i] >= acc[ref]},
                key=lambda i: (lat[i], -acc[i], i))
    return ok[0] if ok else None


def speedup_at_reference(indices: Sequence[int], acc: np.ndarray, lat: np.ndarray,
                         ref: int) -> tuple[float, int | None]:
    """(``lat[ref]`` / latency of :func:`pick_at_reference`, the pick); (0.0, None) when no
    queried cell is as accurate as ``ref``."""
    pick = pick_at_reference(indices, acc, lat, ref)
    return (0.0, None) if pick is None else (float(lat[ref] / lat[pick]), pick)


def best_speedup(acc: np.ndarray, lat: np.ndarray, ref: int) -> tuple[float, int, int]:
    """The exhaustive best: (speed-up of the fastest cell of the whole table at least as
    accurate as ``ref``, that cell, how many cells are at least as accurate)."""
    speed, pick = speedup_at_reference(range(len(acc)), acc, lat, ref)
    assert pick is not None  # ref itself qualifies
    return speed, pick, int((acc >= acc[ref]).sum())


def frontier_accuracy(acc: np.ndarray, lat: np.ndarray, latency_ms: float) -> float:
    """The best accuracy of any cell at most ``latency_ms`` slow (-inf if none)."""
    ok = lat <= latency_ms
    return float(acc[ok].max()) if ok.any() else float("-inf")


# -- runs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One run: device, dataset, strategy, seed."""

    device: str
    dataset: str
    strategy: str
    seed: int

    @property
    def key(self) -> str:
        return f"hand:{self.device}/{self.dataset}:{self.strategy}:{self.seed}"

    @property
    def strategy_seed(self) -> int:
        """Derived from (device, dataset, seed): the same for every strategy of one
        (device, dataset, seed), independent across them."""
        digest = hashlib.sha256(
            f"hand_design:{self.device}/{self.dataset}#{self.seed}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % 2**31


def check_run(run: Run, devices: Sequence[str]) -> None:
    """Raises :class:`HandDesignError` for a run outside the protocol."""
    if run.strategy not in STRATEGIES:
        raise HandDesignError(f"{run.key}: strategy {run.strategy!r} is not one of "
                              f"{', '.join(STRATEGIES)}")
    if run.seed not in SEEDS:
        raise HandDesignError(f"{run.key}: seeds are {SEEDS[0]}-{SEEDS[-1]}, not {run.seed}")
    if run.dataset not in DATASETS:
        raise HandDesignError(f"{run.key}: dataset {run.dataset!r} is not one of "
                              f"{', '.join(DATASETS)}")
    if run.device not in devices:
        raise HandDesignError(f"{run.key}: no latencies of device {run.device!r}")


def plan(devices: Sequence[str]) -> list[Run]:
    """Every run, seed-major (a partial run covers every device, dataset and strategy with
    the first seeds)."""
    return [Run(d, ds, s, seed) for seed in SEEDS for d in sorted(devices)
            for ds in DATASETS for s in STRATEGIES]


def resnet_index(data: Nb201Data) -> int:
    """The ResNet cell's NB201 index, checked against ``RESNET_INDEX``."""
    i = data.index_of[data.space.decode(RESNET).to_string()]
    if i != RESNET_INDEX:
        raise HandDesignError(f"the ResNet cell is index {i} in {data.folder}, not "
                              f"{RESNET_INDEX}: another index order")
    return i


def frozen_options() -> tuple[dict[str, Any], str]:
    """The NB201 protocol's frozen options per strategy here, and frozen.json's sha256."""
    frozen = NP.frozen_settings(FROZEN.parent)
    chosen = frozen["strategies"]
    return {s: chosen[FROZEN_AS[s]]["options"] for s in STRATEGIES}, frozen["sha256"]


def execute(run: Run, data: Nb201Data, options: dict[str, Any], frozen_sha256: str
            ) -> dict[str, Any]:
    """Runs ``run`` and returns its raw record (the queried NB201 indices)."""
    check_run(run, data.devices)
    ref = resnet_index(data)
    bench = data.benchmark(run.device, run.dataset)
    lat = data.latency(run.device)
    target = float(lat[ref])
    t0, c0 = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {}
    if run.strategy == "rl-sweep":
        targets = [float(np.percentile(lat, p)) for p in SWEEP_PERCENTILES]
        indices, parts = NP.sweep_search(bench, data.index_of, targets_ms=targets,
                                         reward=SWEEP_REWARD, seed=run.strategy_seed,
                                         options=options,
                                         queries_each=QUERIES // len(SWEEP_PERCENTILES),
                                         query_cap=QUERIES // len(SWEEP_PERCENTILES))
        record["sweep"] = [{"percentile": p, "target_ms": t, "queries": len(part)}
                           for p, t, part in zip(SWEEP_PERCENTILES, targets, parts,
                                                 strict=True)]
    else:
        log = NP.QueryLog(data.index_of)
        NP.tabular_search(bench, log, strategy=run.strategy, target_ms=target,
                          reward=REWARD, seed=run.strategy_seed, options=options,
                          query_cap=QUERIES, stop_when=lambda: len(log.indices) >= QUERIES)
        indices = log.indices
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return {"schema_version": SCHEMA_VERSION, "key": run.key, "device": run.device,
            "dataset": run.dataset, "strategy": run.strategy, "seed": run.seed,
            "strategy_seed": run.strategy_seed, "options": options,
            "target_ms": None if run.strategy == "rl-sweep" else target,
            "reward": SWEEP_REWARD if run.strategy == "rl-sweep" else REWARD,
            "frozen_sha256": frozen_sha256, "queries": len(indices),
            "indices": [int(i) for i in indices],
            "repeats": [i for i, r in enumerate(repeat_flags(indices)) if r],
            "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S")} | record


def checked(records: Sequence[dict[str, Any]], data: Nb201Data, options: dict[str, Any],
            frozen_sha256: str) -> list[dict[str, Any]]:
    """The stored records, each checked against the protocol (raises
    :class:`HandDesignError` naming the first that is not)."""
    for r in records:
        run = Run(r["device"], r["dataset"], r["strategy"], int(r["seed"]))
        check_run(run, data.devices)
        if r["key"] != run.key:
            raise HandDesignError(f"{r['key']}: key does not match its fields ({run.key})")
        if r.get("frozen_sha256") != frozen_sha256:
            raise HandDesignError(f"{r['key']} was run with other frozen options")
        if r.get("options") != options[run.strategy]:
            raise HandDesignError(f"{r['key']} was run with options {r.get('options')}, "
                                  f"not the frozen {options[run.strategy]}")
        if r.get("strategy_seed") != run.strategy_seed:
            raise HandDesignError(f"{r['key']} ran with strategy seed "
                                  f"{r.get('strategy_seed')}, not {run.strategy_seed}")
        if r.get("queries") != QUERIES or len(r["indices"]) != QUERIES:
            raise HandDesignError(f"{r['key']} made {len(r['indices'])} queries, not "
                                  f"{QUERIES}")
    return list(records)


def phase_run(args, data: Nb201Data) -> int:
    import torch

    torch.set_num_threads(1)
    options, sha = frozen_options()
    resnet_index(data)
    runs = plan(data.devices)
    store = RunStore(Path(args.store) / "runs.jsonl")
    deadline = None if args.max_minutes is None else time.time() + 60 * args.max_minutes
    n = 0
    while (args.max_runs is None or n < args.max_runs) and (
            deadline is None or time.time() < deadline):
        run = store.claim_next(runs)
        if run is None:
            break
        try:
            record = execute(run, data, options[run.strategy], sha)
        except BaseException:
            store.release(run.key)
            raise
        store.append(record)
        n += 1
        left = len(runs) - len(store.done())
        print(f"{run.key}: {record['seconds']:.1f} s ({left} left)", flush=True)
    left = len({r.key for r in runs} - store.done())
    print(f"{n} runs made; {left} of {len(runs)} left")
    return 0


# -- report ---------------------------------------------------------------------------------
def _spread(values: Sequence[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"median": float(np.median(v)), "q25": float(np.percentile(v, 25)),
            "q75": float(np.percentile(v, 75)), "min": float(v.min()), "max": float(v.max())}


def summarize(records: Sequence[dict[str, Any]], data: Nb201Data) -> dict[str, Any]:
    """Per device x dataset: the ResNet cell, the exhaustive best, and per strategy the
    speed-ups of its runs; the CIFAR-10 -> CIFAR-100 / ImageNet16-120 transfer."""
    ref = resnet_index(data)
    by: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in records:
        by.setdefault((r["device"], r["dataset"], r["strategy"]), []).append(r)
    cells: dict[str, dict[str, Any]] = {}
    for device in data.devices:
        lat = data.latency(device)
        for ds in DATASETS:
            acc = data.accuracy(ds)
            best, best_cell, n_ok = best_speedup(acc, lat, ref)
            row: dict[str, Any] = {
                "device": device, "dataset": ds, "resnet_ms": float(lat[ref]),
                "resnet_percentile": float(100 * (lat < lat[ref]).mean()),
                "best_speedup": best, "best_cell": best_cell,
                "best_cell_accuracy": float(100 * acc[best_cell]),
                "cells_at_least_as_accurate": n_ok, "strategies": {}}
            for s in STRATEGIES:
                runs = sorted(by.get((device, ds, s), []), key=lambda r: r["seed"])
                if not runs:
                    continue
                picks = [speedup_at_reference(r["indices"], acc, lat, ref) for r in runs]
                speeds = [p[0] for p in picks]
                row["strategies"][s] = {
                    "seeds": [r["seed"] for r in runs], "speedups": speeds,
                    "picks": [p[1] for p in picks],
                    "found": sum(p[1] is not None for p in picks),
                    "at_best": sum(math.isclose(x, best) for x in speeds),
                    "faster": sum(x > 1.0 for x in speeds),
                    **_spread(speeds),
                    "mean_cpu_seconds": float(np.mean([r["cpu_seconds"] for r in runs]))}
            cells[f"{device}/{ds}"] = row
    return {"cells": cells, "tests": strategy_tests(cells, data.devices),
            "transfer": transfer(by, data, ref)}


def strategy_tests(cells: dict[str, dict[str, Any]], devices: Sequence[str]
                   ) -> list[dict[str, Any]]:
    """Exploratory (see ``CHANGES``): per dataset, every strategy against ``random``, a
    one-sided Wilcoxon signed-rank test over the devices on the mean speed-up of their
    seeds (greater), and the pooled Mann-Whitney test; Holm over all of them."""
    family, labels = [], []
    for ds in DATASETS:
        runs = {s: [(d, x) for d in devices
                    for x in (cells[f"{d}/{ds}"]["strategies"].get(s) or {}).get(
                        "speedups", [])]
                for s in STRATEGIES}
        pairs = [(s, "random") for s in STRATEGIES if s != "random"
                 and runs[s] and runs["random"]]
        for c in compare_pairs(runs, pairs, alternative="greater"):
            family.append(c)
            labels.append({"dataset": ds})
    return [label | c.to_json() | {"a_better": c.a_better, "b_better": c.b_better}
            for label, c in zip(labels, with_holm(family), strict=True)]


def transfer(by: dict[tuple[str, str, str], list[dict[str, Any]]], data: Nb201Data,
             ref: int) -> dict[str, Any]:
    """The CIFAR-10 runs' picks on the other datasets."""
    src = data.accuracy(TRANSFER_FROM)
    out: dict[str, Any] = {}
    for device in data.devices:
        lat = data.latency(device)
        for s in STRATEGIES:
            runs = sorted(by.get((device, TRANSFER_FROM, s), []), key=lambda r: r["seed"])
            if not runs:
                continue
            picks = [pick_at_reference(r["indices"], src, lat, ref) for r in runs]
            found = [p for p in picks if p is not None]
            entry: dict[str, Any] = {"runs": len(runs), "picks": len(found)}
            for ds in TRANSFER_TO:
                acc = data.accuracy(ds)
                if not found:
                    entry[ds] = None
                    continue
                a = [100 * float(acc[p]) for p in found]
                gap = [100 * (frontier_accuracy(acc, lat, float(lat[p])) - acc[p])
                       for p in found]
                entry[ds] = {"accuracy": _spread(a), "gap_to_frontier": _spread(gap),
                             "at_least_resnet": sum(acc[p] >= acc[ref] for p in found),
                             "speedup": _spread([float(lat[ref] / lat[p]) for p in found])}
            out[f"{device}/{s}"] = entry
    return out


def phase_report(args, data: Nb201Data) -> int:
    options, sha = frozen_options()
    ref = resnet_index(data)
    store = RunStore(Path(args.store) / "runs.jsonl")
    records = checked(store.records(), data, options, sha)
    planned = plan(data.devices)
    resnet = {ds: 100 * float(data.accuracy(ds)[ref]) for ds in DATASETS}
    for ds, expected in RESNET_EXPECTED.items():
        if round(resnet[ds], 2) != expected:
            raise HandDesignError(f"the ResNet cell's {ds} accuracy is {resnet[ds]:.4f} in "
                                  f"the data, not {expected}")
    result = {
        "schema_version": SCHEMA_VERSION, "benchmark": "nb201_hand_design",
        "data": str(data.folder), "devices": data.devices,
        "protocol": {"reference": RESNET, "reference_index": ref, "queries": QUERIES,
                     "seeds": [SEEDS[0], SEEDS[-1]], "strategies": list(STRATEGIES),
                     "options": options, "frozen_sha256": sha,
                     "target": "the ResNet cell's latency on the device (local, rl: hard "
                               "reward; motpe, nsga2: constraint); rl-sweep: p25/p50/p75 of "
                               "the device's latency, soft reward, 50 queries each; random: "
                               "none",
                     "accuracy": "the dataset's 200-epoch test accuracy for search and pick "
                                 "(the data have no validation accuracy); the transfer's "
                                 "CIFAR-100 / ImageNet16-120 accuracies were never used for "
                                 "a choice"},
        "resnet": {"accuracy": resnet, "paper": RESNET_PAPER}, "changes": list(CHANGES),
        "planned_runs": len(planned), "stored_runs": len(records),
        "summary": summarize(records, data),
        "machine": machine_facts("cpu", "python"),
    }
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), result, indent=None)
    if records:
        _plot(result, out.with_suffix(".png"))
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(out.with_suffix(".md").read_text())
    return 0


def _plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = r["devices"]
    cells = r["summary"]["cells"]
    fig, axes = plt.subplots(len(DATASETS), 1, figsize=(13, 11), sharex=True)
    width = 0.8 / len(STRATEGIES)
    x = np.arange(len(devices))
    for ax, ds in zip(axes, DATASETS, strict=True):
        best = [cells[f"{d}/{ds}"]["best_speedup"] for d in devices]
        ax.scatter(x, best, marker="_", s=900, color="black", zorder=3,
                   label="best possible (exhaustive)")
        for k, s in enumerate(STRATEGIES):
            med, lo, hi = [], [], []
            for d in devices:
                st = cells[f"{d}/{ds}"]["strategies"].get(s)
                med.append(st["median"] if st else np.nan)
                lo.append(st["median"] - st["q25"] if st else 0)
                hi.append(st["q75"] - st["median"] if st else 0)
            ax.errorbar(x - 0.4 + (k + 0.5) * width, med, yerr=[lo, hi], fmt="o", ms=4,
                        capsize=2, label=s)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_ylabel("speed-up over ResNet cell")
        ax.set_title(f"{DATASET_NAMES[ds]}: fastest cell at least as accurate as the ResNet "
                     f"cell (median and IQR over 20 seeds; 0 = none found)")
        ax.grid(alpha=0.3, axis="y")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=9)
    axes[-1].set_xticks(x, devices, rotation=30, ha="right")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _cell(st: dict[str, Any] | None) -> str:
    if not st:
        return "-"
    n = len(st["speedups"])
    return (f"{st['median']:.2f} [{st['q25']:.2f}-{st['q75']:.2f}] "
            f"{st['found']}/{n}, >1: {st['faster']}")


def markdown(r: dict[str, Any]) -> str:
    p = r["protocol"]
    res = r["resnet"]
    cells = r["summary"]["cells"]
    devices = r["devices"]
    L = ["# Search against the hand-designed ResNet cell on real devices (NAS-Bench-201)", "",
         "Generated by `benchmarks/nb201_hand_design.py report` from the raw runs in "
         "`benchmarks/results/nb201_hand_design/` (nothing edited by hand); the protocol is "
         "the script's docstring, committed before the first run. Exact table lookups, no "
         f"training. Machine: {r['machine']['cpu']}.", "",
         "**Question**: as accurate as NAS-Bench-201's hand-designed ResNet cell, how much "
         "faster is the fastest cell a search finds, and how much faster could it be?", "",
         "## The reference", "",
         f"`{p['reference']}` (index {p['reference_index']}).", "",
         "| | CIFAR-10 | CIFAR-100 | ImageNet16-120 |", "| --- | --- | --- | --- |",
         "| this data (200-epoch test accuracy, NATS-Bench mean over trained seeds) | "
         + " | ".join(f"{res['accuracy'][ds]:.2f}" for ds in DATASETS) + " |",
         "| NAS-Bench-201 paper, Table 5, ResNet, test | "
         + " | ".join(f"{res['paper']['test'][ds]:.2f}" for ds in DATASETS) + " |",
         "| NAS-Bench-201 paper, Table 5, ResNet, validation | "
         + " | ".join(f"{res['paper']['valid'][ds]:.2f}" for ds in DATASETS) + " |", "",
         "The data are the test figures of the 200-epoch schedule (the paper's validation "
         "figures are lower on CIFAR-10, where NB201 validates a network trained on half the "
         "training set; the 12-epoch schedule gives far lower figures). The 0.06 / 0.03 / "
         "0.60-point differences from the paper's test row are most likely the number of "
         "trained seeds averaged: the paper's table came from the first benchmark file, in "
         "which many cells were trained once or twice; the data are NATS-Bench's means over "
         "all trained seeds. Every figure below uses the data's numbers.", "",
         "## Protocol (the script's docstring, committed before the runs)", "",
         f"- Every device with latencies in the data ({len(devices)}), each dataset; seeds "
         f"{p['seeds'][0]}-{p['seeds'][1]}; {p['queries']} queries per run (repeats count).",
         "- **Pick** of a run: the fastest cell it queried whose accuracy is at least the "
         "ResNet cell's on that dataset; **speed-up** = ResNet cell's latency / pick's "
         "latency on the device (0 when the run found no such cell; those count as 0 in the "
         "median). **Best possible**: the same rule over all 15,625 cells.",
         f"- Targets: {p['target']}.",
         "- Strategies run through `mobile-nas search`'s code path on the tabular benchmark "
         "with the NB201 protocol's frozen options (tuned on Pixel 3 / CIFAR-10 only; "
         f"`frozen.json` sha256 `{p['frozen_sha256'][:12]}`): "
         + ", ".join(f"`{s}` {json.dumps(o)}" for s, o in p["options"].items()) + ".",
         "- **Accuracy used for decisions**: the data hold no validation accuracy (test "
         "columns only, here and in the table they come from), so each search decides on "
         "the dataset's 200-epoch test accuracy and the pick is chosen by it too. The "
         "figures are what a search with an exact, noise-free accuracy oracle finds in the "
         "table: an upper bound for a search on noisy validation accuracy, and no evidence "
         "that a picked cell generalizes better than the ResNet cell. The transfer section "
         "is the held-out part: picks made on CIFAR-10 accuracy, judged on CIFAR-100 and "
         "ImageNet16-120, which no decision used.", "",
         f"Coverage: {r['stored_runs']} of {r['planned_runs']} planned runs stored.", ""]
    if r.get("changes"):
        L += ["Changes after the first run:", ""] + [f"- {c}" for c in r["changes"]] + [""]
    if not r["stored_runs"]:
        return "\n".join(L + ["No run yet.", ""])
    L += ["## Speed-up at the ResNet cell's accuracy", "",
          "Per cell: median speed-up [interquartile range] over the seeds, then k/n: the "
          "runs that queried at least one cell as accurate as the ResNet cell, and >1: "
          "those whose pick is strictly faster than the ResNet cell. Best: the "
          "exhaustive best speed-up and how many of the 15,625 cells are at least as "
          "accurate as the ResNet cell. ResNet ms: its latency on the device "
          "(its percentile among all cells).", ""]
    for ds in DATASETS:
        L += [f"### {DATASET_NAMES[ds]} (ResNet cell {res['accuracy'][ds]:.2f}%)", "",
              "| device | ResNet ms (pct) | best | " + " | ".join(STRATEGIES) + " |",
              "| --- | --- | --- |" + " --- |" * len(STRATEGIES)]
        for d in devices:
            c = cells[f"{d}/{ds}"]
            L.append(f"| {d} | {c['resnet_ms']:.3g} ({c['resnet_percentile']:.0f}) | "
                     f"**{c['best_speedup']:.2f}** ({c['cells_at_least_as_accurate']}) | "
                     + " | ".join(_cell(c["strategies"].get(s)) for s in STRATEGIES) + " |")
        L.append("")
    L += _headline(r)
    L += _tests_section(r)
    L += _transfer_section(r)
    return "\n".join(L)


def _tests_section(r: dict[str, Any]) -> list[str]:
    tests = r["summary"]["tests"]
    if not tests:
        return []
    L = ["## Against random sampling (exploratory, added after the runs started)", "",
         "Per dataset, each strategy against `random`: one mean speed-up per device (over "
         "its seeds; a run without a pick counts 0), a one-sided Wilcoxon signed-rank test "
         f"over the {max(t['settings'] for t in tests)} devices, paired by device, Holm "
         f"over these {len(tests)} comparisons. Secondary, for comparison only: the "
         "one-sided Mann-Whitney U test on the pooled runs (every device's seeds together). "
         "Not part of the protocol written before the runs (see the changes below).", "",
         "| dataset | comparison | devices better / worse / tied | mean difference | "
         "Wilcoxon p | **Holm p** | pooled MW p (secondary) | pooled Holm p (secondary) |",
         "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for t in tests:
        mark = " *" if t["p_holm"] < 0.05 else ""
        L.append(f"| {DATASET_NAMES[t['dataset']]} | {t['a']} faster than {t['b']} | "
                 f"{t['a_better']} / {t['b_better']} / {t['ties']} | "
                 f"{t['mean_difference']:+.3f} | {t['p']:.3g} | **{t['p_holm']:.3g}**{mark} | "
                 f"{t['pooled_p']:.3g} | {t['pooled_p_holm']:.3g} |")
    return L + ["", "`*`: below 0.05 after Holm (per-device test).", ""]


def _headline(r: dict[str, Any]) -> list[str]:
    cells = r["summary"]["cells"]
    devices = r["devices"]
    L = ["## Summary (generated)", ""]
    for ds in DATASETS:
        best = {d: cells[f"{d}/{ds}"]["best_speedup"] for d in devices}
        room = [d for d in devices if best[d] > 1.0]
        top = sorted(room, key=lambda d: -best[d])[:3]
        L.append(f"- {DATASET_NAMES[ds]}: a faster cell as accurate as the ResNet cell "
                 f"exists on {len(room)} of {len(devices)} devices (best "
                 + ", ".join(f"{best[d]:.2f}x on {d}" for d in top)
                 + f"); on {', '.join(d for d in devices if d not in room) or 'none'} "
                 "no cell is faster at its accuracy (1.00x).")
        for s in STRATEGIES:
            sts = {d: cells[f"{d}/{ds}"]["strategies"].get(s) for d in devices}
            sts = {d: x for d, x in sts.items() if x}
            if not sts:
                continue
            found = sum(x["found"] for x in sts.values())
            faster = sum(x["faster"] for d, x in sts.items() if d in room)
            runs = sum(len(x["speedups"]) for x in sts.values())
            room_runs = sum(len(x["speedups"]) for d, x in sts.items() if d in room)
            beat = [d for d in room if d in sts and sts[d]["median"] > 1.0]
            L.append(f"  - `{s}`: found a cell as accurate as the ResNet cell in {found} of "
                     f"{runs} runs; on the devices with room, its pick was faster than the "
                     f"ResNet cell in {faster} of {room_runs} runs, and its median speed-up "
                     f"is above 1.00x on {len(beat)} of {len(room)}"
                     + (" (" + ", ".join(f"{d} {sts[d]['median']:.2f}x of "
                                         f"{best[d]:.2f}x" for d in beat) + ")"
                        if beat else "") + ".")
    return L + [""]


def _transfer_section(r: dict[str, Any]) -> list[str]:
    t = r["summary"]["transfer"]
    res = r["resnet"]["accuracy"]
    devices = r["devices"]
    L = ["## Transfer: searched on CIFAR-10, judged on CIFAR-100 and ImageNet16-120", "",
         "Each CIFAR-10 run's pick (fastest cell queried with CIFAR-10 accuracy at least the "
         "ResNet cell's), judged on datasets no decision used. Per cell: median accuracy of "
         "the picks, median gap to the frontier (the best accuracy of any cell at most as "
         "slow as the pick), how many picks are at least as accurate as the ResNet cell on "
         "that dataset (of the runs that made a pick), median speed-up of the picks.", ""]
    for ds in TRANSFER_TO:
        entries = [(e, e[ds]) for e in t.values() if e and e[ds] is not None]
        picks = sum(e["picks"] for e, _ in entries)
        ok = sum(x["at_least_resnet"] for _, x in entries)
        faster = sum(x["speedup"]["median"] > 1.0 for _, x in entries)
        L.append(f"- {DATASET_NAMES[ds]}: {ok} of {picks} CIFAR-10 picks (all devices and "
                 f"strategies) are at least as accurate as the ResNet cell there; the "
                 f"median pick is faster than the ResNet cell for {faster} of "
                 f"{len(entries)} (device, strategy) pairs.")
    L.append("")
    for ds in TRANSFER_TO:
        L += [f"### {DATASET_NAMES[ds]} (ResNet cell {res[ds]:.2f}%)", "",
              "| device | " + " | ".join(STRATEGIES) + " |",
              "| --- |" + " --- |" * len(STRATEGIES)]
        for d in devices:
            row = []
            for s in STRATEGIES:
                e = t.get(f"{d}/{s}")
                if not e or e[ds] is None:
                    row.append("no pick" if e else "-")
                    continue
                x = e[ds]
                row.append(f"{x['accuracy']['median']:.2f}, gap "
                           f"{x['gap_to_frontier']['median']:.2f}, "
                           f"{x['at_least_resnet']}/{e['picks']} >= R, "
                           f"{x['speedup']['median']:.2f}x")
            L.append(f"| {d} | " + " | ".join(row) + " |")
        L.append("")
    return L


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=("run", "report", "pack"))
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--store", default=str(STORE), help="folder of the raw runs")
    p.add_argument("--out", default=str(OUT), help="report prefix (.json/.md/.png)")
    p.add_argument("--max-runs", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    args = p.parse_args(argv)
    return run_main(lambda: _phase(args),
                    also=(HandDesignError, NP.ProtocolError, FileNotFoundError))


def _phase(args: argparse.Namespace) -> int:
    if args.phase == "pack":
        return pack_phase(Path(args.store) / "runs.jsonl", "runs")
    data = Nb201Data(args.data)
    if args.phase == "run":
        return phase_run(args, data)
    return phase_report(args, data)


if __name__ == "__main__":
    raise SystemExit(main())
