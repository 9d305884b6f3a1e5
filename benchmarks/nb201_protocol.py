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
every strategy against ``random`` and ``rl`` against every other, for regret per query,
regret per distinct architecture (lower) and the 2-D and 3-D hypervolume fractions per
query (higher), at 100, 150 and 300; Holm's correction over all of these comparisons
together. Primary test (since 2026-12-07, after the runs; issue 25 item 6): one number per
setting (the mean over its seeds), one-sided Wilcoxon signed-rank over the settings, paired
by setting (:mod:`mobile_nas.search.comparison`). The protocol's original test, one-sided
Mann-Whitney U on the pooled per-run values, stays as a secondary, labelled column: it
treats runs of 105 different settings as one population and overstates the evidence.

Changes after the first run are listed in ``PROTOCOL_CHANGES`` (and on the results page).

Storage: raw runs are JSON lines (``benchmarks/results/nb201_protocol/{tuning,reporting}.
jsonl``), one complete record per line, appended under a file lock and fsynced. A process
claims a run before starting it (``.claims/``; a claim of a dead process is taken over), so
several processes share the work, and killing one loses only its run in progress; a rerun
skips every stored run. ``pack`` moves the stored reporting lines into a gzip part
(``reporting.part-NNN.jsonl.gz``, read like the live file) before they are committed. The
``report`` phase writes ``benchmarks/results/nb201_protocol.
{json,md,png}`` from the stored runs alone, and states which settings and seeds they cover.

Code: :mod:`nb201.protocol` (settings, plans, the guards, one run), :mod:`nb201.store` (the
raw store), :mod:`nb201.metrics` (regret and hypervolume of a run), :mod:`nb201.statistics`
(tables and tests), :mod:`nb201.report` (markdown, JSON, plot); this script is the command.

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
import json
import os
import time
from pathlib import Path

from _shared import machine_facts, result_path, run_main
from mobile_nas.atomic import atomic_write_json
from nb201 import protocol as P
from nb201.data import DEFAULT_DATA, Nb201Data
from nb201.metrics import Metrics
from nb201.report import phase_report
from nb201.statistics import tuning_table
from nb201.store import RunStore, pack_phase

STORE = result_path("nb201_protocol")
OUT = result_path("nb201_protocol")


def phase_freeze(args, data: Nb201Data) -> int:
    """The tuning table's winners -> ``frozen.json`` (refused while the tuning phase is
    incomplete, and once reporting runs exist)."""
    store_dir = Path(args.store)
    path = store_dir / "frozen.json"
    store = RunStore(store_dir / "tuning.jsonl")
    records = P.checked_records(store, "tuning")
    missing = {s.key for s in P.tuning_plan()} - {r["key"] for r in records}
    if missing:
        raise P.ProtocolError(f"the tuning phase is incomplete ({len(missing)} of "
                              f"{len(P.tuning_plan())} runs missing): run 'tune' to the end "
                              f"first")
    reporting = RunStore(store_dir / "reporting.jsonl").records()
    if path.exists() and not args.force:
        raise P.ProtocolError(f"{path} exists: the settings are frozen (--force replaces it, "
                              f"only while no reporting run exists)")
    if path.exists() and reporting:
        raise P.ProtocolError(f"{path} has {len(reporting)} reporting runs made with it; it "
                              f"cannot be replaced")
    rows = tuning_table(records, Metrics(data))
    chosen = {}
    for s in P.STRATEGIES:
        mine = [r for r in rows if r["strategy"] == s]
        best = min(mine, key=lambda r: (r["criterion"], r["config"]))
        chosen[s] = {"config": best["config"], "options": best["options"],
                     "criterion": best["criterion"]}
    frozen = {"schema_version": P.SCHEMA_VERSION,
              "frozen": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "tuning_setting": P.TUNING_SETTING.key,
              "tuning_seeds": [P.TUNING_SEEDS[0], P.TUNING_SEEDS[-1]],
              "criterion": f"mean regret (accuracy points) over the tuning seeds, averaged "
                           f"over {', '.join(map(str, P.KEY_BUDGETS))} and both views "
                           f"(per query, per distinct architecture); lower is better",
              "tuning_records_sha256": P.sha256_file(store.path), "strategies": chosen}
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
    spec = P.RunSpec("cost", P.TUNING_SETTING, "random", 0, "{}", P.COST_SEED)
    P.execute(spec, data, check=False)  # warm-up: imports and per-layer MAC counts
    rows = {}
    for s in P.STRATEGIES:
        rec = P.execute(P.RunSpec("cost", P.TUNING_SETTING, s, 0, "{}", P.COST_SEED), data,
                        check=False)
        rows[s] = {"seconds": rec["seconds"], "cpu_seconds": rec["cpu_seconds"],
                   "queries": rec["queries"], "distinct": rec["distinct"]}
        print(f"{s:<10} {rec['seconds']:6.2f} s wall, {rec['cpu_seconds']:6.2f} s CPU, "
              f"{rec['queries']} queries, {rec['distinct']} distinct", flush=True)
    per_seed = sum(r["cpu_seconds"] for r in rows.values())
    tune_s = sum(rows[s]["cpu_seconds"] * len(P.TUNING_GRID[s]) * len(P.TUNING_SEEDS)
                 for s in P.STRATEGIES)
    n_report = len(P.reporting_settings(data.devices))
    report_s = per_seed * n_report * len(P.REPORTING_SEEDS)
    out = {"schema_version": P.SCHEMA_VERSION, "setting": P.TUNING_SETTING.key,
           "seed": P.COST_SEED,
           "machine": machine_facts(
               "cpu", "python", "cores", load_average_1min=round(os.getloadavg()[0], 2),
               note="a shared VM; one process, one torch thread, nice 10"),
           "measured": time.strftime("%Y-%m-%d"), "per_run": rows,
           "projected_seconds": {"tuning": round(tune_s), "reporting": round(report_s),
                                 "reporting_runs": n_report * len(P.REPORTING_SEEDS)
                                 * len(P.STRATEGIES)}}
    atomic_write_json(Path(args.store) / "cost.json", out)
    print(f"projected on one free core (CPU seconds): tuning {tune_s / 60:.0f} min, "
          f"reporting {report_s / 3600:.1f} h")
    return 0


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
    return run_main(lambda: _phase(args), also=(P.ProtocolError, FileNotFoundError))


def _phase(args: argparse.Namespace) -> int:
    if args.phase == "pack":  # no data needed
        return pack_phase(Path(args.store) / "reporting.jsonl", "reporting runs")
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
        plan = P.tuning_plan()
        store = RunStore(store_dir / "tuning.jsonl")
        n = P.work(plan, store, data, max_runs=args.max_runs,
                   max_minutes=args.max_minutes)
    else:
        frozen = P.frozen_settings(store_dir)
        plan = P.reporting_plan(data.devices, frozen)
        store = RunStore(store_dir / "reporting.jsonl")
        n = P.work(plan, store, data, max_runs=args.max_runs,
                   max_minutes=args.max_minutes, frozen_sha256=frozen["sha256"])
    left = len({s.key for s in plan} - store.done())
    print(f"{n} runs made; {left} of {len(plan)} left")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
