"""Search strategies on NAS-Bench-201 under a protocol written down before the runs (issue 16).

Protocol
--------
Data: ``../shared/data/nb201`` (read, never copied; see its SOURCE.md): NAS-Bench-201's
200-epoch test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120 for all 15,625 cells, and
batch-1 latency of every cell on 12 devices (HW-NAS-Bench via HELP; measured on CIFAR-10
inputs). MACs: fvcore counts of the ``nb201`` space's network (3x32x32 input, 10 classes:
the network the latencies were measured on), computed here by
:func:`mobile_nas.search.costs.macs_params` (28 distinct values over the space).

Settings: (device, dataset, latency target). The target is a percentile of the device's
latency over all 15,625 cells; an architecture is feasible when its latency is at most the
target.

* **Tuning set**: Pixel 3 / CIFAR-10 at the 50th percentile, seeds 100-119, and nothing else.
* **Reporting set**: every other (device, dataset) pair, i.e. the 11 other devices x 3
  datasets and Pixel 3 x CIFAR-100 and ImageNet16-120 (35 pairs), each at the 25th, 50th and
  75th percentile (105 settings), seeds 0-19. The tuning pair is not reported at any target.
  :func:`check_run` refuses a tuning run on anything but the tuning setting and seeds, and a
  reporting run on the tuning pair or a tuning seed; every run and every stored record goes
  through it.

Strategies: ``random``, ``evolution`` (regularized evolution), ``local`` (local search, White
et al. 2020), ``tpe`` (Optuna, multivariate), ``nsga2`` (Optuna; accuracy and latency as
objectives, the target as a constraint) and ``rl`` (the LSTM controller). Each run is
``mobile-nas search``'s own code path (:func:`~mobile_nas.search.runner.run_search`) with the
tabular evaluator, an in-memory study, the hard MnasNet reward (the target is a budget) and
every candidate evaluated (no skip margin). The strategy's seed is the run's seed on the tuning
set and, on the reporting set, a seed derived from (setting, seed) (``RunSpec.strategy_seed``:
independent streams across settings; the same for every strategy of one (setting, seed)).

Budget: a run goes on until it has made ``QUERIES`` (300) queries *and* evaluated
``DISTINCT`` (300) distinct architectures, or until ``QUERY_CAP`` (900) queries. For every
run the sequence of queried NB201 indices is stored, with the positions of repeats.

* *Regret* at budget ``b`` = (the table's best accuracy among feasible cells) - (the best
  feasible accuracy the run found within ``b``), in accuracy points; a run with no feasible
  find scores accuracy 0. Two views (:mod:`mobile_nas.search.counting`): *per query* (the
  first ``b`` queries) and *per distinct architecture* (the first ``b`` different cells; a
  repeat is free). A run stopped by the cap before 300 distinct cells keeps its last value.
* *Hypervolume fraction*: the hypervolume of the cells a run evaluated within ``b``
  (every cell, feasible or not), over the hypervolume of the whole table, for (accuracy up,
  latency down) and (accuracy up, latency down, MACs down). Fixed reference point per
  (device, dataset): accuracy = the dataset's median accuracy over the table, latency = the
  device's largest latency, MACs = the largest MACs (:func:`reference_point`). Exact, by
  :func:`mobile_nas.search.pareto.hypervolume` (Optuna's algorithm).

Tuning: every strategy with options gets ``K`` (6) configurations on the tuning set, listed in
``TUNING_GRID`` before any run (configuration 0 is the strategy's defaults); ``random`` has no
options and runs its one configuration. Criterion, lower is better: the mean regret over the
tuning seeds, averaged over 100, 150 and 300 and over both views. Ties go to the lower
configuration number. ``freeze`` writes the winners (and the hash of the raw tuning records
they come from) to ``frozen.json``; the reporting phase runs only those and refuses to start
without it. Note: ``rl``'s defaults (configuration 0) were chosen before this protocol on
three settings with seeds 100-119, two of which (Raspberry Pi 4 / CIFAR-100 and Pixel 2 /
ImageNet16-120) are reporting pairs; the report also aggregates without them.

Statistics: over the (setting, seed) runs that every strategy completed (the matched set),
one-sided Mann-Whitney U tests (scipy) on the pooled per-run values: every strategy against
``random`` and ``rl`` against every other, for regret per query, regret per distinct
architecture (lower) and the 2-D and 3-D hypervolume fractions per query (higher), at 100,
150 and 300; Holm's correction over all of these comparisons together.

Changes after the first run are listed in ``PROTOCOL_CHANGES`` (and on the results page).

Storage: raw runs are JSON lines (``benchmarks/results/nb201_protocol/{tuning,reporting}.
jsonl``), one complete record per line, appended under a file lock and fsynced. A process
claims a run before starting it (``.claims/``; a claim of a dead process is taken over), so
several processes share the work, and killing one loses only its run in progress; a rerun
skips every stored run. ``pack`` moves the stored reporting lines into a gzip part
(``reporting.part-NNN.jsonl.gz``, read like the live file) before they are committed. The
``report`` phase writes ``benchmarks/results/nb201_protocol.
{json,md,png}`` from the stored runs alone, and states which settings and seeds they cover.

Run (each phase resumable; ``--max-minutes`` / ``--max-runs`` run a chunk)::

    python benchmarks/nb201_protocol.py cost     # seconds per run of each strategy (planning)
    python benchmarks/nb201_protocol.py tune     # the tuning set (620 runs)
    python benchmarks/nb201_protocol.py freeze   # the tuning table -> frozen.json
    python benchmarks/nb201_protocol.py run      # the reporting set (16,800 runs: 12,600 of
                                                 # the six, 4,200 of motpe and rl-sweep)
    python benchmarks/nb201_protocol.py report   # markdown, JSON summary and plots
    python benchmarks/nb201_protocol.py pack     # stored reporting runs -> a gzip part
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import math
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mobile_nas.atomic import atomic_path, atomic_write_json, atomic_write_text
from mobile_nas.search.counting import VIEWS, best_so_far, prefix, repeat_flags
from mobile_nas.search.pareto import hypervolume

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "nb201"
RESULTS = ROOT / "benchmarks" / "results"
STORE = RESULTS / "nb201_protocol"
OUT = RESULTS / "nb201_protocol"

SCHEMA_VERSION = 1
DATASETS = ("cifar10_test", "cifar100_test", "imagenet16_test")
DATASET_NAMES = {"cifar10_test": "CIFAR-10", "cifar100_test": "CIFAR-100",
                 "imagenet16_test": "ImageNet16-120"}
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
CLAIM_TTL_S = 3600  # a claim older than this (of another host) is taken over

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


# -- the table ----------------------------------------------------------------------------------
class Nb201Data:
    """NB201 accuracy (fraction), latency (ms) and MACs as arrays by NB201 index, and a
    :class:`~mobile_nas.search.table_evaluator.TabularBenchmark` per (device, dataset)."""

    def __init__(self, folder: str | Path) -> None:
        from mobile_nas.search.table_evaluator import read_value_csv
        from mobile_nas.space import get_space

        self.folder = Path(folder)
        if not (self.folder / "accuracy.csv").is_file():
            raise FileNotFoundError(f"NAS-Bench-201 data not found in {self.folder} (see "
                                    f"../shared/data/nb201/SOURCE.md)")
        self.space = get_space("nb201")
        texts = (self.folder / "archs.txt").read_text().split()
        self.keys = [self.space.decode(t).to_string() for t in texts]
        self.index_of = {k: i for i, k in enumerate(self.keys)}
        self.devices = sorted(p.stem[len("latency_"):]
                              for p in self.folder.glob("latency_*.csv"))
        self._read = read_value_csv
        self._acc: dict[str, np.ndarray] = {}
        self._lat: dict[str, np.ndarray] = {}
        self._macs: np.ndarray | None = None

    def _array(self, values: dict[str, float]) -> np.ndarray:
        return np.array([values[k] for k in self.keys], dtype=float)

    def accuracy(self, dataset: str) -> np.ndarray:
        if dataset not in self._acc:
            col = self._read(self.folder / "accuracy.csv", self.space, column=dataset)
            acc = self._array(col.values)
            self._acc[dataset] = acc / 100.0 if acc.max() > 1.0 else acc  # NB201: percent
        return self._acc[dataset]

    def latency(self, device: str) -> np.ndarray:
        if device not in self._lat:
            col = self._read(self.folder / f"latency_{device}.csv", self.space,
                             index_to_arch=dict(enumerate(self.keys)))
            self._lat[device] = self._array(col.values)
        return self._lat[device]

    def macs(self) -> np.ndarray:
        if self._macs is None:
            from mobile_nas.search.costs import macs_params

            self._macs = np.array([macs_params(self.space.decode(k))[0] for k in self.keys],
                                  dtype=float)
        return self._macs

    def target_ms(self, setting: Setting) -> float:
        return float(np.percentile(self.latency(setting.device), setting.percentile))

    def optimum(self, setting: Setting) -> tuple[int, float]:
        """The NB201 index and accuracy of the best feasible cell."""
        acc = np.where(self.latency(setting.device) <= self.target_ms(setting),
                       self.accuracy(setting.dataset), -np.inf)
        i = int(np.argmax(acc))
        return i, float(acc[i])

    def bench(self, setting: Setting):
        from mobile_nas.search.table_evaluator import TabularBenchmark

        acc, lat = self.accuracy(setting.dataset), self.latency(setting.device)
        return TabularBenchmark(space=self.space,
                                accuracy=dict(zip(self.keys, acc.tolist(), strict=True)),
                                latency_ms=dict(zip(self.keys, lat.tolist(), strict=True)),
                                source=f"{self.folder}: {setting.dataset} + {setting.device}")


def reference_point(data: Nb201Data, device: str, dataset: str) -> tuple[float, float, float]:
    """The fixed hypervolume reference of a (device, dataset): (median accuracy of the table,
    largest latency, largest MACs)."""
    return (float(np.median(data.accuracy(dataset))), float(data.latency(device).max()),
            float(data.macs().max()))


# -- one run --------------------------------------------------------------------------------
def execute(spec: RunSpec, data: Nb201Data, *, frozen_sha256: str | None = None,
            check: bool = True) -> dict[str, Any]:
    """Runs ``spec`` through ``run_search`` and returns its raw record."""
    from mobile_nas.search.runner import SearchConfig, run_search

    if check:
        check_run(spec.phase, spec.setting, spec.seed)
    bench = data.bench(spec.setting)
    target = data.target_ms(spec.setting)
    indices: list[int] = []
    seen: set[int] = set()
    repeats: list[int] = []

    def on_trial(t: dict[str, Any]) -> None:
        i = data.index_of[t["arch"]]
        if i in seen:
            repeats.append(len(indices))
        seen.add(i)
        indices.append(i)

    def enough() -> bool:
        return len(indices) >= QUERIES and len(seen) >= DISTINCT

    def search(strategy: str, target_ms: float, reward: str, seed: int, stop_when) -> None:
        with tempfile.TemporaryDirectory(prefix="nb201_protocol_") as run_dir:
            config = SearchConfig(space="nb201", strategy=strategy, trials=QUERY_CAP,
                                  out_dir=run_dir, latency_target_ms=target_ms,
                                  reward=reward, storage="memory", seed=seed,
                                  strategy_options=spec.options, progress=False,
                                  skip_margin=None)
            run_search(config, evaluator=bench.evaluator(), latency_fn=bench.latency_ms,
                       on_trial=on_trial, stop_when=stop_when)

    t0, c0 = time.perf_counter(), time.process_time()
    sweep = None
    if spec.strategy == "rl-sweep":
        sweep = []
        for k, pct in enumerate(SWEEP_PERCENTILES):
            start = len(indices)
            seen.clear()  # a sub-run's own repeats are recomputed on the interleaving
            t_ms = float(np.percentile(data.latency(spec.setting.device), pct))
            search("rl", t_ms, SWEEP_REWARD, (spec.strategy_seed + k) % 2**31,
                   lambda start=start: len(indices) - start >= QUERIES // len(
                       SWEEP_PERCENTILES))
            sweep.append({"percentile": pct, "target_ms": t_ms,
                          "indices": indices[start:]})
        indices[:] = interleave([part["indices"] for part in sweep])
        seen.clear()
        seen.update(indices)
        repeats[:] = [i for i, r in enumerate(repeat_flags(indices)) if r]
    else:
        search(spec.strategy, target, REWARD, spec.strategy_seed, enough)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    record = {"schema_version": SCHEMA_VERSION, "key": spec.key, "phase": spec.phase,
              "setting": spec.setting.key, "target_ms": target, "strategy": spec.strategy,
              "config": spec.config, "options": spec.options, "seed": spec.seed,
              "strategy_seed": spec.strategy_seed,
              "queries": len(indices), "distinct": len(seen),
              "stopped": "budget" if enough() or sweep else "query_cap",
              "indices": indices, "repeats": repeats, "seconds": round(seconds, 3),
              "cpu_seconds": round(cpu_seconds, 3),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if sweep is not None:
        record["sweep"] = [{k: v for k, v in part.items() if k != "indices"} | {
            "queries": len(part["indices"])} for part in sweep]
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


# -- the raw store: JSON lines, a lock, claims --------------------------------------------------
class RunStore:
    """Raw run records of one phase, one JSON object a line (see the module docstring).

    Appends happen under an exclusive ``flock`` and are fsynced; a line torn by a kill is
    ignored (and its run redone). Claims (``.claims/<phase>/<hash>``) keep processes that
    share the store from running the same run; a claim whose process is dead (same host) or
    older than ``CLAIM_TTL_S`` is taken over. :meth:`pack` moves the appended lines into a
    gzip part (``<stem>.part-NNN.jsonl.gz``, read like the live file) to keep the committed
    store small; processes sharing the store notice (the live file is a new inode) and
    re-read.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_path = self.path.parent / f".{self.path.stem}.lock"
        self.claims = self.path.parent / ".claims" / self.path.stem
        self.claims.mkdir(parents=True, exist_ok=True)
        self._offset = 0
        self._inode: tuple[int | None, int] | None = None  # None: nothing read yet
        self._records: dict[str, dict[str, Any]] = {}
        self.torn = 0

    def parts(self) -> list[Path]:
        return sorted(self.path.parent.glob(f"{self.path.stem}.part-*.jsonl.gz"))

    def _read_lines(self, data: bytes) -> None:
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                self.torn += 1  # a write cut by a kill: its run was not recorded
                continue
            self._records.setdefault(rec["key"], rec)

    def pack(self) -> int:
        """Moves every complete line of the live file into a new gzip part and empties the
        live file (a torn last line is dropped: its run was not recorded). Returns the
        number of lines packed. A kill between the two steps leaves records in both places,
        which reading de-duplicates by key."""
        import gzip

        with self._locked():
            data = self.path.read_bytes() if self.path.exists() else b""
            end = data.rfind(b"\n")
            if end < 0:
                return 0
            lines = data[:end + 1]
            numbers = [int(p.name.split(".part-")[1].split(".")[0]) for p in self.parts()]
            part = self.path.parent / (f"{self.path.stem}.part-"
                                       f"{max(numbers, default=-1) + 1:03d}.jsonl.gz")
            with atomic_path(part) as tmp:
                tmp.write_bytes(gzip.compress(lines, compresslevel=9, mtime=0))
            with atomic_path(self.path) as tmp:
                tmp.write_bytes(b"")
            return lines.count(b"\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _refresh(self) -> None:
        import gzip

        # the live file's inode and the parts: a pack makes a new live file and a new part
        inode = (self.path.stat().st_ino if self.path.exists() else None, len(self.parts()))
        if inode != self._inode:  # first read, or packed by some process: read it all
            self._records, self._offset, self.torn, self._inode = {}, 0, 0, inode
            for part in self.parts():
                self._read_lines(gzip.decompress(part.read_bytes()))
        if inode[0] is None:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n")
        if end < 0:
            return
        self._read_lines(data[:end])
        self._offset += end + 1

    def records(self) -> list[dict[str, Any]]:
        self._refresh()
        return list(self._records.values())

    def done(self) -> set[str]:
        self._refresh()
        return set(self._records)

    def _claim_path(self, key: str) -> Path:
        return self.claims / hashlib.sha1(key.encode()).hexdigest()

    @staticmethod
    def _stale(path: Path) -> bool:
        try:
            info = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return True
        if time.time() - float(info.get("time", 0)) > CLAIM_TTL_S:
            return True
        if info.get("host") != socket.gethostname():
            return False
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def claim_next(self, plan: Sequence[RunSpec]) -> RunSpec | None:
        """Claims the first run of ``plan`` that is neither stored nor claimed."""
        with self._locked():
            done = self.done()
            for spec in plan:
                if spec.key in done:
                    continue
                path = self._claim_path(spec.key)
                if path.exists() and not self._stale(path):
                    continue
                path.write_text(json.dumps({"key": spec.key, "host": socket.gethostname(),
                                            "pid": os.getpid(), "time": time.time()}))
                return spec
        return None

    def release(self, key: str) -> None:
        self._claim_path(key).unlink(missing_ok=True)

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self._locked():
            with open(self.path, "ab") as fh:
                if fh.tell() > 0:
                    with open(self.path, "rb") as rd:
                        rd.seek(-1, os.SEEK_END)
                        if rd.read(1) != b"\n":  # a torn last line: end it first
                            fh.write(b"\n")
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
            self.release(record["key"])


def work(plan: Sequence[RunSpec], store: RunStore, data: Nb201Data, *, max_runs: int | None,
         max_minutes: float | None, frozen_sha256: str | None = None) -> int:
    """Runs the unstored runs of ``plan`` until done or a limit; returns how many ran."""
    deadline = None if max_minutes is None else time.time() + 60 * max_minutes
    n = 0
    for spec in plan:  # refuse a bad plan before running anything
        check_run(spec.phase, spec.setting, spec.seed)
    while (max_runs is None or n < max_runs) and (deadline is None or time.time() < deadline):
        spec = store.claim_next(plan)
        if spec is None:
            break
        try:
            record = execute(spec, data, frozen_sha256=frozen_sha256)
        except BaseException:
            store.release(spec.key)
            raise
        store.append(record)
        n += 1
        left = len(plan) - len(store.done())
        print(f"{spec.key}: {record['queries']} queries, {record['distinct']} distinct, "
              f"{record['seconds']:.1f} s ({left} left)", flush=True)
    return n


# -- per-run metrics ---------------------------------------------------------------------------
class Metrics:
    """Regret curves and hypervolume fractions of stored runs (cached per (device, dataset))."""

    def __init__(self, data: Nb201Data) -> None:
        self.data = data
        self._true: dict[tuple[str, str], tuple[float, float]] = {}

    def true_hypervolumes(self, device: str, dataset: str) -> tuple[float, float]:
        if (device, dataset) not in self._true:
            acc, lat = self.data.accuracy(dataset), self.data.latency(device)
            ref = reference_point(self.data, device, dataset)
            pts3 = np.stack([acc, lat, self.data.macs()], axis=1)
            self._true[(device, dataset)] = (
                hypervolume(pts3[:, :2], (True, False), ref[:2]),
                hypervolume(pts3, (True, False, False), ref))
        return self._true[(device, dataset)]

    def of(self, record: dict[str, Any]) -> dict[str, Any]:
        setting = Setting.from_key(record["setting"])
        idx = np.asarray(record["indices"], dtype=int)
        rep = repeat_flags(idx.tolist())
        if [i for i, r in enumerate(rep) if r] != list(record["repeats"]):
            raise ProtocolError(f"{record['key']}: stored repeats do not match its indices")
        acc = self.data.accuracy(setting.dataset)[idx]
        lat = self.data.latency(setting.device)[idx]
        feasible = lat <= self.data.target_ms(setting)
        _, opt = self.data.optimum(setting)
        out: dict[str, Any] = {"setting": setting, "seed": record["seed"],
                               "strategy": record["strategy"],
                               "stopped": record["stopped"], "queries": record["queries"],
                               "distinct": record["distinct"], "seconds": record["seconds"],
                               "cpu_seconds": record.get("cpu_seconds", float("nan"))}
        for view, length in (("query", QUERIES), ("distinct", DISTINCT)):
            best = best_so_far(acc, feasible, rep, view=view)[:length]
            best = np.nan_to_num(best, nan=0.0)  # nothing feasible yet: accuracy 0
            if len(best) < length:  # stopped by the query cap: the last value stays
                best = np.concatenate([best, np.full(length - len(best), best[-1])])
            out[f"regret_{view}"] = 100.0 * (opt - best)
        hv2_true, hv3_true = self.true_hypervolumes(*setting.pair)
        ref = reference_point(self.data, *setting.pair)
        macs = self.data.macs()
        for view in VIEWS:
            for b in BUDGETS:
                sel = np.unique(prefix(idx.tolist(), rep, b, view=view))
                pts = np.stack([self.data.accuracy(setting.dataset)[sel],
                                self.data.latency(setting.device)[sel], macs[sel]], axis=1)
                out[f"hv2_{view}_{b}"] = hypervolume(pts[:, :2], (True, False),
                                                     ref[:2]) / hv2_true
                out[f"hv3_{view}_{b}"] = hypervolume(pts, (True, False, False),
                                                     ref) / hv3_true
        out["distinct_at_query_budget"] = len(set(idx[:QUERIES].tolist()))
        return out


def value(m: dict[str, Any], metric: str, budget: int) -> float:
    """One number of a run: ``regret_query`` / ``regret_distinct`` at ``budget`` or a
    hypervolume fraction ``hv2_query`` ... at ``budget``."""
    if metric.startswith("regret_"):
        return float(m[metric][budget - 1])
    return float(m[f"{metric}_{budget}"])


# -- statistics -----------------------------------------------------------------------------
def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    out = [0.0] * len(pvalues)
    running = 0.0
    m = len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


TESTED_METRICS = {"regret_query": "less", "regret_distinct": "less", "hv2_query": "greater",
                  "hv3_query": "greater"}


def comparisons() -> list[tuple[str, str]]:
    """(a, b) pairs tested as 'a better than b': every strategy vs random, rl vs the rest."""
    pairs = [(s, "random") for s in STRATEGIES if s != "random"]
    pairs += [("rl", s) for s in STRATEGIES if s not in ("rl", "random")]
    return pairs


FRONT_METRICS = ("hv2_query", "hv3_query")


def front_comparisons() -> list[tuple[str, str]]:
    """The multi-objective family: ``rl-sweep`` against every other strategy, and the two
    Pareto samplers against random; 'a has the larger hypervolume fraction than b'."""
    pairs = [("rl-sweep", s) for s in ALL_STRATEGIES if s != "rl-sweep"]
    pairs += [(s, "random") for s in ("motpe", "nsga2")]
    return pairs


def mann_whitney_holm(runs: dict[str, list[dict[str, Any]]], metrics: dict[str, str],
                      pairs: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """One-sided Mann-Whitney U for every (metric, key budget, pair), Holm-adjusted over
    all of them together."""
    from scipy.stats import mannwhitneyu

    tests = []
    for metric, alternative in metrics.items():
        for b in KEY_BUDGETS:
            for a, c in pairs:
                x = [value(m, metric, b) for m in runs[a]]
                y = [value(m, metric, b) for m in runs[c]]
                p = float(mannwhitneyu(x, y, alternative=alternative).pvalue) \
                    if len(x) > 1 else 1.0
                tests.append({"metric": metric, "budget": b, "a": a, "b": c,
                              "alternative": alternative, "p": p})
    for t, adj in zip(tests, holm([t["p"] for t in tests]), strict=True):
        t["p_holm"] = adj
    return tests


# -- phases -------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frozen(store_dir: Path) -> dict[str, Any]:
    path = store_dir / "frozen.json"
    if not path.is_file():
        raise ProtocolError(f"{path} does not exist: run the tuning phase and 'freeze' first")
    frozen = json.loads(path.read_text())
    frozen["sha256"] = _sha256(path)
    return frozen


def _checked_records(store: RunStore, phase: str) -> list[dict[str, Any]]:
    records = store.records()
    for r in records:
        if r.get("phase") != phase:
            raise ProtocolError(f"{store.path}: record {r.get('key')} is of phase "
                                f"{r.get('phase')!r}, not {phase!r}")
        check_run(phase, Setting.from_key(r["setting"]), int(r["seed"]))
    return records


def tuning_table(records: list[dict[str, Any]], metrics: Metrics) -> list[dict[str, Any]]:
    """Per strategy configuration: mean ± se regret at the key budgets in both views, the
    criterion and the number of seeds, from the stored tuning runs."""
    rows = []
    for s in STRATEGIES:
        for c, options in enumerate(TUNING_GRID[s]):
            ms = [metrics.of(r) for r in records if r["strategy"] == s and r["config"] == c]
            row: dict[str, Any] = {"strategy": s, "config": c, "options": options,
                                   "seeds": sorted(m["seed"] for m in ms)}
            if ms:
                for view in VIEWS:
                    for b in KEY_BUDGETS:
                        v = np.array([value(m, f"regret_{view}", b) for m in ms])
                        row[f"regret_{view}_{b}"] = float(v.mean())
                        row[f"se_{view}_{b}"] = float(v.std(ddof=1) / math.sqrt(len(v))) \
                            if len(v) > 1 else float("nan")
                row["criterion"] = float(np.mean([row[f"regret_{v}_{b}"] for v in VIEWS
                                                  for b in KEY_BUDGETS]))
                row["mean_distinct_at_300_queries"] = float(np.mean(
                    [m["distinct_at_query_budget"] for m in ms]))
                row["mean_seconds"] = float(np.mean([m["seconds"] for m in ms]))
            rows.append(row)
    return rows


def phase_freeze(args, data: Nb201Data) -> int:
    store_dir = Path(args.store)
    path = store_dir / "frozen.json"
    store = RunStore(store_dir / "tuning.jsonl")
    records = _checked_records(store, "tuning")
    missing = {s.key for s in tuning_plan()} - {r["key"] for r in records}
    if missing:
        raise ProtocolError(f"the tuning phase is incomplete ({len(missing)} of "
                            f"{len(tuning_plan())} runs missing): run 'tune' to the end first")
    reporting = RunStore(store_dir / "reporting.jsonl").records()
    if path.exists() and not args.force:
        raise ProtocolError(f"{path} exists: the settings are frozen (--force replaces it, "
                            f"only while no reporting run exists)")
    if path.exists() and reporting:
        raise ProtocolError(f"{path} has {len(reporting)} reporting runs made with it; it "
                            f"cannot be replaced")
    rows = tuning_table(records, Metrics(data))
    chosen = {}
    for s in STRATEGIES:
        mine = [r for r in rows if r["strategy"] == s]
        best = min(mine, key=lambda r: (r["criterion"], r["config"]))
        chosen[s] = {"config": best["config"], "options": best["options"],
                     "criterion": best["criterion"]}
    frozen = {"schema_version": SCHEMA_VERSION, "frozen": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "tuning_setting": TUNING_SETTING.key,
              "tuning_seeds": [TUNING_SEEDS[0], TUNING_SEEDS[-1]],
              "criterion": f"mean regret (accuracy points) over the tuning seeds, averaged "
                           f"over {', '.join(map(str, KEY_BUDGETS))} and both views "
                           f"(per query, per distinct architecture); lower is better",
              "tuning_records_sha256": _sha256(store.path), "strategies": chosen}
    atomic_write_json(path, frozen)
    for s, c in chosen.items():
        print(f"{s:<10} config {c['config']} {json.dumps(c['options'])} "
              f"criterion {c['criterion']:.3f}")
    return 0


def phase_cost(args, data: Nb201Data) -> int:
    """One run per strategy (defaults) at the tuning setting, seed ``COST_SEED``: wall and
    CPU seconds, queries, distinct (no accuracy is recorded: planning only). Projections
    use CPU seconds: what one free core would take."""
    import torch

    torch.set_num_threads(1)
    spec = RunSpec("cost", TUNING_SETTING, "random", 0, "{}", COST_SEED)
    execute(spec, data, check=False)  # warm-up: imports and per-layer MAC counts
    rows = {}
    for s in STRATEGIES:
        rec = execute(RunSpec("cost", TUNING_SETTING, s, 0, "{}", COST_SEED), data,
                      check=False)
        rows[s] = {"seconds": rec["seconds"], "cpu_seconds": rec["cpu_seconds"],
                   "queries": rec["queries"], "distinct": rec["distinct"]}
        print(f"{s:<10} {rec['seconds']:6.2f} s wall, {rec['cpu_seconds']:6.2f} s CPU, "
              f"{rec['queries']} queries, {rec['distinct']} distinct", flush=True)
    per_seed = sum(r["cpu_seconds"] for r in rows.values())
    tune_s = sum(rows[s]["cpu_seconds"] * len(TUNING_GRID[s]) * len(TUNING_SEEDS)
                 for s in STRATEGIES)
    n_report = len(reporting_settings(data.devices))
    report_s = per_seed * n_report * len(REPORTING_SEEDS)
    out = {"schema_version": SCHEMA_VERSION, "setting": TUNING_SETTING.key, "seed": COST_SEED,
           "machine": {"cpu": _cpu(), "python": platform.python_version(),
                       "cores": os.cpu_count(),
                       "load_average_1min": round(os.getloadavg()[0], 2),
                       "note": "a shared VM; one process, one torch thread, nice 10"},
           "measured": time.strftime("%Y-%m-%d"), "per_run": rows,
           "projected_seconds": {"tuning": round(tune_s), "reporting": round(report_s),
                                 "reporting_runs": n_report * len(REPORTING_SEEDS)
                                 * len(STRATEGIES)}}
    atomic_write_json(Path(args.store) / "cost.json", out)
    print(f"projected on one free core (CPU seconds): tuning {tune_s / 60:.0f} min, "
          f"reporting {report_s / 3600:.1f} h")
    return 0


def phase_report(args, data: Nb201Data) -> int:
    store_dir = Path(args.store)
    metrics = Metrics(data)
    tuning = _checked_records(RunStore(store_dir / "tuning.jsonl"), "tuning")
    rows = tuning_table(tuning, metrics)
    frozen_path = store_dir / "frozen.json"
    frozen = _frozen(store_dir) if frozen_path.is_file() else None
    reporting = _checked_records(RunStore(store_dir / "reporting.jsonl"), "reporting")
    if reporting and frozen is None:
        raise ProtocolError("reporting runs exist but frozen.json does not")
    for r in reporting:
        if r.get("frozen_sha256") != frozen["sha256"]:
            raise ProtocolError(f"{r['key']} was run with other frozen settings")
        if r["config"] != frozen["strategies"][frozen_as(r["strategy"])]["config"]:
            raise ProtocolError(f"{r['key']} is not the frozen configuration")
        spec = RunSpec("reporting", Setting.from_key(r["setting"]), r["strategy"],
                       r["config"], "{}", int(r["seed"]))
        if r.get("strategy_seed") != spec.strategy_seed:
            raise ProtocolError(f"{r['key']} ran with strategy seed "
                                f"{r.get('strategy_seed')}, not {spec.strategy_seed}")
    summary = summarize(reporting, metrics, data)
    cost_path = store_dir / "cost.json"
    result = {
        "schema_version": SCHEMA_VERSION, "benchmark": "nb201_protocol",
        "data": str(data.folder), "devices": data.devices,
        "protocol": {"tuning_setting": TUNING_SETTING.key,
                     "tuning_seeds": [TUNING_SEEDS[0], TUNING_SEEDS[-1]],
                     "reporting_settings": len(reporting_settings(data.devices)),
                     "reporting_seeds": [REPORTING_SEEDS[0], REPORTING_SEEDS[-1]],
                     "strategies": list(STRATEGIES), "queries": QUERIES,
                     "distinct": DISTINCT, "query_cap": QUERY_CAP, "budgets": list(BUDGETS),
                     "reward": REWARD, "tuning_grid": TUNING_GRID},
        "tuning": {"planned": len(tuning_plan()), "stored": len(tuning), "table": rows,
                   "records_sha256": _sha256(store_dir / "tuning.jsonl")
                   if (store_dir / "tuning.jsonl").exists() else None},
        "frozen": frozen,
        "reporting": summary,
        "cost": json.loads(cost_path.read_text()) if cost_path.is_file() else None,
        "machine": {"cpu": _cpu(), "python": platform.python_version()},
    }
    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), result, indent=None)
    if summary["matched_runs"]:
        _plot(summary, out.with_suffix(".png"))
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(out.with_suffix(".md").read_text())
    return 0


def summarize(records: list[dict[str, Any]], metrics: Metrics, data: Nb201Data
              ) -> dict[str, Any]:
    """Coverage, aggregate tables, curves and tests over the matched reporting runs."""
    planned = reporting_settings(data.devices)
    by: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in records:
        by.setdefault((r["setting"], r["seed"]), {})[r["strategy"]] = r
    matched = sorted(k for k, v in by.items() if set(v) >= set(STRATEGIES))
    runs = {s: [metrics.of(by[k][s]) for k in matched] for s in STRATEGIES}
    front = front_summary(by, metrics)
    seeds_per_setting: dict[str, list[int]] = {}
    for setting, seed in matched:
        seeds_per_setting.setdefault(setting, []).append(seed)
    out: dict[str, Any] = {
        "planned_runs": len(planned) * len(REPORTING_SEEDS) * len(STRATEGIES),
        "front_planned_runs": len(planned) * len(REPORTING_SEEDS) * len(FRONT_STRATEGIES),
        "stored_runs": sum(r["strategy"] in STRATEGIES for r in records),
        "matched_runs": len(matched), "front": front,
        "settings_planned": len(planned), "settings_covered": len(seeds_per_setting),
        "seeds_per_setting": seeds_per_setting,
        "uncovered_settings": [s.key for s in planned if s.key not in seeds_per_setting]}
    if not matched:
        return out

    def table(keep) -> dict[str, Any]:
        return aggregate(runs, keep)

    out["all"] = table(lambda m: True)
    cpu = sum(out["all"][s]["mean_cpu_seconds"] for s in STRATEGIES)
    cpu_front = sum(front["all"][s]["mean_cpu_seconds"] for s in FRONT_STRATEGIES) \
        if front["matched_runs"] else 0.0
    sets = len(planned) * len(REPORTING_SEEDS)
    out["projected_cpu_hours"] = {
        "per_seed_of_every_setting": (cpu + cpu_front) * len(planned) / 3600,
        "left": (cpu * (sets - len(matched)) + cpu_front * (sets - front["matched_runs"]))
        / 3600}
    out["without_earlier_rl_sweep_pairs"] = table(
        lambda m: m["setting"].pair not in EARLIER_RL_SWEEP_PAIRS)
    out["by_dataset"] = {ds: table(lambda m, ds=ds: m["setting"].dataset == ds)
                         for ds in DATASETS}
    out["by_percentile"] = {str(p): table(lambda m, p=p: m["setting"].percentile == p)
                            for p in PERCENTILES}
    out["by_device"] = {d: table(lambda m, d=d: m["setting"].device == d)
                        for d in data.devices}
    out["curves"] = {s: {view: np.mean([m[f"regret_{view}"] for m in runs[s]],
                                       axis=0).round(4).tolist() for view in VIEWS}
                     for s in STRATEGIES}
    out["tests"] = mann_whitney_holm(runs, TESTED_METRICS, comparisons())
    out["rl_rank"] = {f"{view}_{b}": 1 + sorted(
        STRATEGIES, key=lambda s: out["all"][s][f"regret_{view}_{b}"][0]).index("rl")
        for view in VIEWS for b in KEY_BUDGETS}
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
            for b in BUDGETS:
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
    matched = sorted(k for k, v in by.items() if set(v) >= set(ALL_STRATEGIES))
    out: dict[str, Any] = {"matched_runs": len(matched),
                           "settings_covered": len({k[0] for k in matched})}
    if not matched:
        return out
    runs = {s: [metrics.of(by[k][s]) for k in matched] for s in ALL_STRATEGIES}
    out["all"] = aggregate(runs)
    out["tests"] = mann_whitney_holm(runs, {m: "greater" for m in FRONT_METRICS},
                                     front_comparisons())
    out["rl_sweep_rank"] = {f"{metric}_{b}": 1 + sorted(
        ALL_STRATEGIES, key=lambda s: -out["all"][s][f"{metric}_{b}"][0]).index("rl-sweep")
        for metric in FRONT_METRICS for b in KEY_BUDGETS}
    return out


# -- output ---------------------------------------------------------------------------------
def _cpu() -> str:
    from mobile_nas.cost.latency.runner import cpu_model

    return cpu_model()


def _plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, view in zip(axes[0], VIEWS, strict=True):
        for s in STRATEGIES:
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
            ax.plot(BUDGETS, [row[f"{hv}_query_{b}"][0] for b in BUDGETS],
                    marker="o", label=s, linestyle="--" if s in FRONT_STRATEGIES else "-")
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
        f"else. Every strategy with options tries the same number of configurations, {K} "
        f"(configuration 0 = its defaults; `random` has no options: 1). Criterion: "
        f"mean regret averaged over {', '.join(map(str, KEY_BUDGETS))} and both views; "
        f"the winners are frozen in `frozen.json` before any reporting run.",
        f"- **Reporting set**: every (device, dataset) pair but Pixel 3 / CIFAR-10 "
        f"({p['reporting_settings'] // len(PERCENTILES)} pairs: {len(r['devices']) - 1} other "
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
        "- **Statistics**: on the matched runs (every strategy ran the same (setting, seed)), "
        "one-sided Mann-Whitney U on the pooled per-run values, every strategy against "
        "`random` and `rl` against each other strategy, for regret per query and per "
        "distinct architecture and both hypervolume fractions per query, at "
        f"{', '.join(map(str, KEY_BUDGETS))}; Holm's correction over all "
        f"{len(TESTED_METRICS) * len(KEY_BUDGETS) * len(comparisons())} comparisons.",
        "- Published NB201 figures are not quoted: none shares this constrained, "
        "latency-targeted protocol.",
        "",
    ]
    if PROTOCOL_CHANGES:
        L += ["Changes after the first run:", ""] + [f"- {c}" for c in PROTOCOL_CHANGES] + [""]
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
                 for v in VIEWS for b in KEY_BUDGETS]
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
          f"{s['front_planned_runs'] // len(FRONT_STRATEGIES)} by `motpe` and `rl-sweep` "
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
    head = "| strategy | " + " | ".join(str(b) for b in BUDGETS) + " |"
    sep = "| --- |" + " --- |" * len(BUDGETS)
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
                                               for b in BUDGETS) + " |")
        L.append("")
    L += ["### Repeats and cost", "", "| strategy | distinct cells in 300 queries | runs "
          f"stopped at {QUERY_CAP} queries | wall s/run | CPU s/run |",
          "| --- | --- | --- | --- | --- |"]
    for st, row in s["all"].items():
        L.append(f"| {st} | {row['distinct_at_300_queries']:.0f} | {row['stopped_at_cap']} | "
                 f"{row['mean_seconds']:.2f} | {row['mean_cpu_seconds']:.2f} |")
    ph = s["projected_cpu_hours"]
    L += ["", f"At these CPU times, one seed of every setting costs "
              f"{ph['per_seed_of_every_setting']:.2f} CPU hours and the runs not made yet "
              f"{ph['left']:.1f} CPU hours on one free core (wall time on a shared machine is "
              f"longer)."]
    mid = KEY_BUDGETS[len(KEY_BUDGETS) // 2]
    L += ["", f"### Breakdown at {mid} (mean regret per query / per distinct)", "",
          "| group | runs | " + " | ".join(STRATEGIES) + " |",
          "| --- | --- |" + " --- |" * len(STRATEGIES)]
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
            for st in STRATEGIES) + " |")
    L += ["", "### Tests (one-sided Mann-Whitney U, Holm over all "
          f"{len(s['tests'])} comparisons)", "",
          "| metric | budget | comparison | p | p (Holm) |", "| --- | --- | --- | --- | --- |"]
    for t in s["tests"]:
        better = "lower" if t["alternative"] == "less" else "higher"
        mark = " *" if t["p_holm"] < 0.05 else ""
        L.append(f"| {t['metric']} | {t['budget']} | {t['a']} {better} than {t['b']} | "
                 f"{t['p']:.3g} | {t['p_holm']:.3g}{mark} |")
    L += ["", "`*`: below 0.05 after Holm.", "", "## Closing note (generated)", ""]
    for view in VIEWS:
        for b in KEY_BUDGETS:
            rank = s["rl_rank"][f"{view}_{b}"]
            ps = [t for t in s["tests"] if t["metric"] == f"regret_{view}"
                  and t["budget"] == b and t["a"] == "rl"]
            best = min(STRATEGIES, key=lambda st: s["all"][st][f"regret_{view}_{b}"][0])
            L.append(f"- {view} view, {b}: `rl` ranks {rank} of {len(STRATEGIES)} by mean "
                     f"regret (lowest: `{best}`); Holm-corrected p that `rl`'s regret is "
                     f"lower: " + ", ".join(f"vs {t['b']} {t['p_holm']:.3g}" for t in ps)
                     + ".")
    L += ["", f"Over {s['matched_runs']} matched runs of {s['planned_runs'] // len(STRATEGIES)} "
          "planned per strategy; see Coverage.", ""]
    return L


def _front_tables(f: dict[str, Any]) -> list[str]:
    L = ["## Multi-objective front (item 3)", "",
         "Hypervolume fraction per query of the cells each strategy evaluated, over the "
         f"(setting, seed) runs that all {len(ALL_STRATEGIES)} strategies completed: "
         f"{f['matched_runs']} runs per strategy on {f.get('settings_covered', 0)} settings. "
         "`motpe` and `nsga2` search accuracy and latency as two objectives (the target a "
         "constraint); `rl-sweep` is `rl` with MnasNet's soft reward run once per target "
         f"({', '.join(f'p{p}' for p in SWEEP_PERCENTILES)} of the device's latency), "
         f"{QUERIES // len(SWEEP_PERCENTILES)} queries each, interleaved (its first b queries "
         "are b/3 of each); the others are the regret runs above (one target, hard reward). "
         "`motpe` and `rl-sweep` run with the frozen options of `tpe` and `rl` (not tuned "
         "on their own).", ""]
    if not f["matched_runs"]:
        return L + ["No run of all eight strategies yet.", ""]
    head = "| strategy | " + " | ".join(str(b) for b in BUDGETS) + " |"
    sep = "| --- |" + " --- |" * len(BUDGETS)
    for title, metric in (("(accuracy, latency)", "hv2_query"),
                          ("(accuracy, latency, MACs)", "hv3_query")):
        L += [f"### Hypervolume fraction, {title}, per query (higher is better)", "",
              head, sep]
        for st, row in sorted(f["all"].items(),
                              key=lambda kv: -kv[1][f"{metric}_{BUDGETS[-1]}"][0]):
            L.append(f"| {st} | " + " | ".join(_fmt(row[f"{metric}_{b}"], 4)
                                               for b in BUDGETS) + " |")
        L.append("")
    L += [f"### Tests (one-sided Mann-Whitney U, larger hypervolume; Holm over these "
          f"{len(f['tests'])})", "",
          "| metric | budget | comparison | p | p (Holm) |", "| --- | --- | --- | --- | --- |"]
    for t in f["tests"]:
        mark = " *" if t["p_holm"] < 0.05 else ""
        L.append(f"| {t['metric']} | {t['budget']} | {t['a']} larger than {t['b']} | "
                 f"{t['p']:.3g} | {t['p_holm']:.3g}{mark} |")
    L += ["", "Generated summary:", ""]
    for metric in FRONT_METRICS:
        for b in KEY_BUDGETS:
            best = max(ALL_STRATEGIES, key=lambda st: f["all"][st][f"{metric}_{b}"][0])
            ps = [t for t in f["tests"] if t["metric"] == metric and t["budget"] == b
                  and t["a"] == "rl-sweep"]
            L.append(f"- {metric}, {b} queries: `rl-sweep` ranks "
                     f"{f['rl_sweep_rank'][f'{metric}_{b}']} of {len(ALL_STRATEGIES)} "
                     f"(largest: `{best}`); Holm p that it is larger: "
                     + ", ".join(f"vs {t['b']} {t['p_holm']:.3g}" for t in ps) + ".")
    return L + [""]


# -- command line -------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("phase", choices=("cost", "tune", "freeze", "run", "report", "pack"),
                   help="pack: move the reporting runs stored so far into a gzip part "
                        "(before committing them)")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--store", default=str(STORE), help="folder of the raw runs")
    p.add_argument("--out", default=str(OUT), help="report prefix (.json/.md/.png)")
    p.add_argument("--max-runs", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--force", action="store_true",
                   help="freeze: replace frozen.json (only while no reporting run exists)")
    args = p.parse_args(argv)
    try:
        if args.phase == "pack":  # no data needed
            n = RunStore(Path(args.store) / "reporting.jsonl").pack()
            print(f"{n} reporting runs packed")
            return 0
        data = Nb201Data(args.data)
        if args.phase == "cost":
            return phase_cost(args, data)
        if args.phase == "freeze":
            return phase_freeze(args, data)
        if args.phase == "report":
            return phase_report(args, data)
        import torch

        torch.set_num_threads(1)
        store_dir = Path(args.store)
        if args.phase == "tune":
            plan = tuning_plan()
            store = RunStore(store_dir / "tuning.jsonl")
            n = work(plan, store, data, max_runs=args.max_runs, max_minutes=args.max_minutes)
        else:
            frozen = _frozen(store_dir)
            plan = reporting_plan(data.devices, frozen)
            store = RunStore(store_dir / "reporting.jsonl")
            n = work(plan, store, data, max_runs=args.max_runs, max_minutes=args.max_minutes,
                     frozen_sha256=frozen["sha256"])
        left = len({s.key for s in plan} - store.done())
        print(f"{n} runs made; {left} of {len(plan)} left")
        return 0
    except (ProtocolError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
