"""The NAS-Bench-201 protocol: settings, the separation of tuning and reporting, the plans,
and one run through ``mobile-nas search``'s own code path.

See ``benchmarks/nb201_protocol.py`` for the protocol as a whole. This module holds what
decides which runs exist and what a run is: :class:`Setting`, :func:`check_run` (a tuning
run on a reporting setting, or a reporting run on the tuning pair, is refused), the plans,
:func:`execute` (one raw record) and :func:`work` (a plan through a
:class:`~nb201.store.RunStore`). :func:`tabular_search` and :func:`sweep_search` run a
strategy on the tabular benchmark and record the queried NB201 indices; other NB201
benchmarks (``nb201_hand_design.py``) reuse them.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobile_nas.search.counting import repeat_flags
from nb201.data import DATASETS, Nb201Data
from nb201.store import RunStore

SCHEMA_VERSION = 1
PERCENTILES = (25, 50, 75)
TUNING_PAIR = ("pixel3", "cifar10_test")
TUNING_PERCENTILE = 50
TUNING_SEEDS = tuple(range(100, 120))
REPORTING_SEEDS = tuple(range(0, 20))
COST_SEED = 999  # the cost phase's seed: neither a tuning nor a reporting seed
STRATEGIES = ("random", "evolution", "local", "tpe", "nsga2", "rl")
#: Strategies of the multi-objective comparison only (hypervolume; added after the reporting
#: phase started, see PROTOCOL_CHANGES), each run with the frozen options of the strategy
#: it extends: ``motpe`` (TPE on accuracy and latency as two objectives, the target a
#: constraint) and ``rl-sweep`` (``rl`` with MnasNet's soft reward, once per target of
#: SWEEP_PERCENTILES, QUERIES // 3 queries each; its queries are interleaved round-robin, so
#: its first b queries are b / 3 of each target's run).
FRONT_STRATEGIES = {"motpe": "tpe", "rl-sweep": "rl"}
ALL_STRATEGIES = STRATEGIES + tuple(FRONT_STRATEGIES)
SWEEP_PERCENTILES = (25, 50, 75)
SWEEP_REWARD = "soft"
QUERIES = 300
DISTINCT = 300
QUERY_CAP = 900
BUDGETS = (10, 20, 50, 100, 150, 200, 300)
KEY_BUDGETS = (100, 150, 300)  # the tuning criterion, the tests, the closing note
REWARD = "hard"
#: Pairs the ``rl`` defaults (configuration 0) were chosen on before this protocol.
EARLIER_RL_SWEEP_PAIRS = (("raspi4", "cifar100_test"), ("pixel2", "imagenet16_test"))

#: Configurations tried on the tuning set, fixed before any run: K per strategy with
#: options, configuration 0 = the defaults. ``random`` has no options.
K = 6
TUNING_GRID: dict[str, list[dict[str, Any]]] = {
    "random": [{}],
    "evolution": [{}, {"population_size": 10, "sample_size": 3},
                  {"population_size": 50, "sample_size": 10}, {"sample_size": 10},
                  {"sample_size": 3}, {"mutations": 2}],
    "local": [{}, {"initial_samples": 5}, {"initial_samples": 10}, {"initial_samples": 20},
              {"first_improvement": True}, {"first_improvement": True, "initial_samples": 10}],
    "tpe": [{}, {"n_startup_trials": 5}, {"n_startup_trials": 20}, {"n_startup_trials": 40},
            {"n_ei_candidates": 8}, {"n_ei_candidates": 96}],
    "nsga2": [{}, {"population_size": 10}, {"population_size": 50}, {"crossover_prob": 0.5},
              {"mutation_prob": 0.5}, {"swapping_prob": 0.2}],
    "rl": [{}, {"lr": 0.02}, {"lr": 0.1}, {"elite_fraction": 0.1}, {"elite_fraction": 0.02},
           {"entropy_coef": 0.01}],
}


#: Every change to the protocol after its first run, stated on the results page.
PROTOCOL_CHANGES = (
    "2026-11-30, after the tuning phase and a first reporting chunk (439 runs, seed 0 on 73 "
    "settings): reporting runs now give the strategy a seed derived from (setting, seed) "
    "instead of the bare seed, because with the bare seed `random` queried the same cells "
    "on every setting and the pooled tests would have counted correlated runs as "
    "independent. Those 439 runs were discarded (their report had been generated and read); "
    "the tuning runs and the frozen choices were not affected (one setting).",
    "2026-11-30, after 1,619 reporting runs (seeds 0-2): the multi-objective comparison of "
    "item 3 added `motpe` (multi-objective TPE) and `rl-sweep` (`rl`, soft reward, one run "
    "per target at the 25th/50th/75th percentile, 100 queries each). They were not tuned: "
    "they take the frozen options of `tpe` and `rl`. They are compared on hypervolume only, "
    "over the (setting, seed) runs that all eight strategies completed, with their own Holm "
    "family; the regret tables and tests of the six are unchanged.",
    "2026-12-07, after every run (issue 25 item 6): the primary test is now one number per "
    "setting (the mean over its seeds) and a one-sided Wilcoxon signed-rank test over the "
    "105 settings, paired by setting, with Holm over each family as before. The protocol's "
    "pooled Mann-Whitney U test stays beside it as a secondary column: it counts the 2,100 "
    "runs of 105 different settings as one population, and its p-values (down to 1e-300) "
    "overstate the evidence. No run, metric, comparison, family or budget changed; the "
    "page lists every comparison whose verdict at 0.05 differs between the two tests.",
)


class ProtocolError(Exception):
    """A run or record that the protocol forbids (a tuning setting reported, a reporting
    setting tuned, a seed of the other phase, unfrozen settings)."""


# -- settings and the separation of the two phases -------------------------------------------
@dataclass(frozen=True, order=True)
class Setting:
    """A device, an accuracy column and a latency-percentile target."""

    device: str
    dataset: str
    percentile: int

    @property
    def key(self) -> str:
        return f"{self.device}/{self.dataset}/p{self.percentile}"

    @property
    def pair(self) -> tuple[str, str]:
        return (self.device, self.dataset)

    @classmethod
    def from_key(cls, key: str) -> Setting:
        device, dataset, p = key.split("/")
        return cls(device, dataset, int(p.lstrip("p")))


TUNING_SETTING = Setting(*TUNING_PAIR, TUNING_PERCENTILE)


def tuning_settings() -> list[Setting]:
    return [TUNING_SETTING]


def reporting_settings(devices: Sequence[str]) -> list[Setting]:
    """Every (device, dataset) pair but the tuning pair, at every reporting percentile."""
    return [Setting(d, ds, p) for d in sorted(devices) for ds in DATASETS for p in PERCENTILES
            if (d, ds) != TUNING_PAIR]


def check_run(phase: str, setting: Setting, seed: int) -> None:
    """Raises :class:`ProtocolError` unless ``phase`` may run (or report) ``setting`` with
    ``seed``: the tuning phase only the tuning setting and seeds; the reporting phase never
    the tuning (device, dataset) pair, only reporting percentiles and seeds."""
    if phase == "tuning":
        if setting != TUNING_SETTING:
            raise ProtocolError(f"the tuning phase runs only {TUNING_SETTING.key}; "
                                f"{setting.key} belongs to the reporting set")
        if seed not in TUNING_SEEDS:
            raise ProtocolError(f"tuning seeds are {TUNING_SEEDS[0]}-{TUNING_SEEDS[-1]}, "
                                f"not {seed}")
    elif phase == "reporting":
        if setting.pair == TUNING_PAIR:
            raise ProtocolError(f"{setting.key} is on the tuning pair "
                                f"{'/'.join(TUNING_PAIR)}: a reporting run cannot report it")
        if setting.dataset not in DATASETS or setting.percentile not in PERCENTILES:
            raise ProtocolError(f"{setting.key} is not a reporting setting (datasets "
                                f"{', '.join(DATASETS)}; percentiles {PERCENTILES})")
        if seed not in REPORTING_SEEDS:
            raise ProtocolError(f"reporting seeds are {REPORTING_SEEDS[0]}-"
                                f"{REPORTING_SEEDS[-1]}, not {seed}")
    else:
        raise ProtocolError(f"unknown phase {phase!r} (tuning or reporting)")


@dataclass(frozen=True)
class RunSpec:
    """One run: phase, setting, strategy configuration and seed."""

    phase: str
    setting: Setting
    strategy: str
    config: int
    options_json: str
    seed: int

    @property
    def key(self) -> str:
        return f"{self.phase}:{self.setting.key}:{self.strategy}#{self.config}:{self.seed}"

    @property
    def options(self) -> dict[str, Any]:
        return json.loads(self.options_json)

    @property
    def strategy_seed(self) -> int:
        """The seed the strategy gets. Tuning (one setting): the seed itself. Reporting: a
        seed derived from the setting and the seed, so that seed ``k`` on different settings
        draws independent streams (with the bare seed, ``random`` would query the same
        cells on all 105 settings and the pooled tests would count correlated runs as
        independent). Every strategy of one (setting, seed) gets the same one."""
        if self.phase != "reporting":
            return self.seed
        digest = hashlib.sha256(f"{self.setting.key}#{self.seed}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % 2**31


def tuning_plan() -> list[RunSpec]:
    """Every tuning run, seed-major (a partial phase covers every configuration evenly)."""
    return [RunSpec("tuning", TUNING_SETTING, s, c, json.dumps(o, sort_keys=True), seed)
            for seed in TUNING_SEEDS for s in STRATEGIES
            for c, o in enumerate(TUNING_GRID[s])]


def reporting_plan(devices: Sequence[str], frozen: dict[str, Any]) -> list[RunSpec]:
    """Every reporting run with the frozen configurations, seed-major, all strategies of a
    (setting, seed) together, the settings of each seed in one fixed shuffled order: a
    partial phase covers a random sample of settings (every device, dataset and target
    alike) with the first seeds, every strategy on the same runs."""
    chosen = frozen["strategies"]
    missing = [s for s in STRATEGIES if s not in chosen]
    if missing:
        raise ProtocolError(f"frozen settings lack {', '.join(missing)}")
    settings = reporting_settings(devices)
    order = np.random.default_rng(16).permutation(len(settings))  # 16: the issue
    return [RunSpec("reporting", settings[int(i)], s, int(chosen[frozen_as(s)]["config"]),
                    json.dumps(chosen[frozen_as(s)]["options"], sort_keys=True), seed)
            for seed in REPORTING_SEEDS for i in order for s in ALL_STRATEGIES]


def frozen_as(strategy: str) -> str:
    """The strategy whose frozen options ``strategy`` runs with (itself, or the one a
    multi-objective variant extends)."""
    return FRONT_STRATEGIES.get(strategy, strategy)


# -- guards of stored files ------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def frozen_settings(store_dir: Path) -> dict[str, Any]:
    path = store_dir / "frozen.json"
    if not path.is_file():
        raise ProtocolError(f"{path} does not exist: run the tuning phase and 'freeze' first")
    frozen = json.loads(path.read_text())
    frozen["sha256"] = sha256_file(path)
    return frozen


def checked_records(store: RunStore, phase: str) -> list[dict[str, Any]]:
    records = store.records()
    for r in records:
        if r.get("phase") != phase:
            raise ProtocolError(f"{store.path}: record {r.get('key')} is of phase "
                                f"{r.get('phase')!r}, not {phase!r}")
        check_run(phase, Setting.from_key(r["setting"]), int(r["seed"]))
    return records


def check_reporting_records(reporting: Sequence[dict[str, Any]],
                            frozen: dict[str, Any] | None) -> None:
    """Raises :class:`ProtocolError` unless every reporting record was run with the frozen
    settings (``frozen.json``'s hash), the frozen configuration of its strategy and the
    strategy seed its (setting, seed) derives."""
    if reporting and frozen is None:
        raise ProtocolError("reporting runs exist but frozen.json does not")
    for r in reporting:
        assert frozen is not None
        if r.get("frozen_sha256") != frozen["sha256"]:
            raise ProtocolError(f"{r['key']} was run with other frozen settings")
        if r["config"] != frozen["strategies"][frozen_as(r["strategy"])]["config"]:
            raise ProtocolError(f"{r['key']} is not the frozen configuration")
        spec = RunSpec("reporting", Setting.from_key(r["setting"]), r["strategy"],
                       r["config"], "{}", int(r["seed"]))
        if r.get("strategy_seed") != spec.strategy_seed:
            raise ProtocolError(f"{r['key']} ran with strategy seed "
                                f"{r.get('strategy_seed')}, not {spec.strategy_seed}")


# -- one run --------------------------------------------------------------------------------
class QueryLog:
    """The NB201 indices a search queried, in order, the distinct ones and the positions of
    repeats (``on_trial`` is ``run_search``'s trial callback)."""

    def __init__(self, index_of: dict[str, int]) -> None:
        self.index_of = index_of
        self.indices: list[int] = []
        self.seen: set[int] = set()
        self.repeats: list[int] = []

    def on_trial(self, t: dict[str, Any]) -> None:
        i = self.index_of[t["arch"]]
        if i in self.seen:
            self.repeats.append(len(self.indices))
        self.seen.add(i)
        self.indices.append(i)


def tabular_search(bench, log: QueryLog, *, strategy: str, target_ms: float, reward: str,
                   seed: int, options: dict[str, Any], query_cap: int,
                   stop_when: Callable[[], bool]) -> None:
    """Runs ``strategy`` through ``run_search`` on the tabular benchmark ``bench`` (its
    evaluator and latency), an in-memory study, every candidate evaluated (no skip margin),
    until ``stop_when`` or ``query_cap`` trials; every query goes to ``log``. ``rl`` without
    a ``proposal`` option runs the controller these benchmarks recorded before 2026-12-07
    (``proposal="sample"``; :func:`~mobile_nas.search.strategies.reinforce.options_before_edit`).
    """
    from mobile_nas.search.runner import SearchConfig, run_search
    from mobile_nas.search.strategies.reinforce import options_before_edit

    with tempfile.TemporaryDirectory(prefix="nb201_") as run_dir:
        config = SearchConfig(space="nb201", strategy=strategy, trials=query_cap,
                              out_dir=run_dir, latency_target_ms=target_ms,
                              reward=reward, storage="memory", seed=seed,
                              strategy_options=options_before_edit(strategy, options),
                              progress=False,
                              skip_margin=None)
        run_search(config, evaluator=bench.evaluator(), latency_fn=bench.latency_ms,
                   on_trial=log.on_trial, stop_when=stop_when)


def sweep_search(bench, index_of: dict[str, int], *, targets_ms: Sequence[float],
                 reward: str, seed: int, options: dict[str, Any], queries_each: int,
                 query_cap: int, strategy: str = "rl") -> tuple[list[int], list[list[int]]]:
    """``strategy`` once per target of ``targets_ms`` (strategy seed ``seed + k`` for the
    ``k``-th), ``queries_each`` queries each; returns the queries interleaved round-robin
    (:func:`interleave`) and each target's own."""
    parts = []
    for k, t_ms in enumerate(targets_ms):
        log = QueryLog(index_of)
        tabular_search(bench, log, strategy=strategy, target_ms=t_ms, reward=reward,
                       seed=(seed + k) % 2**31, options=options, query_cap=query_cap,
                       stop_when=lambda log=log: len(log.indices) >= queries_each)
        parts.append(log.indices)
    return interleave(parts), parts


def execute(spec: RunSpec, data: Nb201Data, *, frozen_sha256: str | None = None,
            check: bool = True) -> dict[str, Any]:
    """Runs ``spec`` through ``run_search`` and returns its raw record."""
    if check:
        check_run(spec.phase, spec.setting, spec.seed)
    bench = data.bench(spec.setting)
    target = data.target_ms(spec.setting)
    log = QueryLog(data.index_of)

    def enough() -> bool:
        return len(log.indices) >= QUERIES and len(log.seen) >= DISTINCT

    t0, c0 = time.perf_counter(), time.process_time()
    sweep = None
    if spec.strategy == "rl-sweep":
        targets = [float(np.percentile(data.latency(spec.setting.device), pct))
                   for pct in SWEEP_PERCENTILES]
        indices, parts = sweep_search(bench, data.index_of, targets_ms=targets,
                                      reward=SWEEP_REWARD, seed=spec.strategy_seed,
                                      options=spec.options,
                                      queries_each=QUERIES // len(SWEEP_PERCENTILES),
                                      query_cap=QUERY_CAP)
        sweep = [{"percentile": pct, "target_ms": t, "queries": len(part)}
                 for pct, t, part in zip(SWEEP_PERCENTILES, targets, parts, strict=True)]
        repeats = [i for i, r in enumerate(repeat_flags(indices)) if r]
        distinct = len(set(indices))
    else:
        tabular_search(bench, log, strategy=spec.strategy, target_ms=target, reward=REWARD,
                       seed=spec.strategy_seed, options=spec.options, query_cap=QUERY_CAP,
                       stop_when=enough)
        indices, repeats, distinct = log.indices, log.repeats, len(log.seen)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    record = {"schema_version": SCHEMA_VERSION, "key": spec.key, "phase": spec.phase,
              "setting": spec.setting.key, "target_ms": target, "strategy": spec.strategy,
              "config": spec.config, "options": spec.options, "seed": spec.seed,
              "strategy_seed": spec.strategy_seed,
              "queries": len(indices), "distinct": distinct,
              "stopped": "budget" if sweep or enough() else "query_cap",
              "indices": indices, "repeats": repeats, "seconds": round(seconds, 3),
              "cpu_seconds": round(cpu_seconds, 3),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if sweep is not None:
        record["sweep"] = sweep
    if frozen_sha256 is not None:
        record["frozen_sha256"] = frozen_sha256
    return record


def interleave(parts: Sequence[Sequence[int]]) -> list[int]:
    """Round-robin merge: the first element of every part, then the second, ... (a shorter
    part simply ends)."""
    out: list[int] = []
    for k in range(max((len(p) for p in parts), default=0)):
        out += [p[k] for p in parts if k < len(p)]
    return out


def work(plan: Sequence[RunSpec], store: RunStore, data: Nb201Data, *, max_runs: int | None,
         max_minutes: float | None, frozen_sha256: str | None = None,
         check: Callable[[str, Setting, int], None] = check_run) -> int:
    """Runs the unstored runs of ``plan`` until done or a limit; returns how many ran.
    ``check`` (this protocol's :func:`check_run` unless another protocol's) refuses a run
    outside the protocol, before anything runs and again before each run."""
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    n = 0
    for spec in plan:  # refuse a bad plan before running anything
        check(spec.phase, spec.setting, spec.seed)
    while (max_runs is None or n < max_runs) and (deadline is None or time.time() < deadline):
        spec = store.claim_next(plan)
        if spec is None:
            break
        try:
            check(spec.phase, spec.setting, spec.seed)
            record = execute(spec, data, frozen_sha256=frozen_sha256, check=False)
        except BaseException:
            store.release(spec.key)
            raise
        store.append(record)
        n += 1
        left = len(plan) - len(store.done())
        print(f"{spec.key}: {record['queries']} queries, {record['distinct']} distinct, "
              f"{record['seconds']:.1f} s ({left} left)", flush=True)
    return n
