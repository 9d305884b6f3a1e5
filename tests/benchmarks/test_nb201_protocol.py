"""benchmarks/nb201_protocol.py and its package benchmarks/nb201/: the separation of tuning
and reporting, equal tuning effort, the raw store (resume, claims, torn lines) and, with the
NB201 data, runs end to end and the report with its per-setting tests."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks import load_script

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "nb201"


ENTRY = load_script("nb201_protocol")  # puts benchmarks/ on the path for the package
from nb201 import data as D  # noqa: E402
from nb201 import metrics as M  # noqa: E402
from nb201 import protocol as P  # noqa: E402
from nb201 import statistics as S  # noqa: E402
from nb201.store import RunStore  # noqa: E402

DEVICES = ["1080ti_1", "essential_ph_1", "eyeriss", "fpga", "gold_6226", "pixel2", "pixel3",
           "raspi4", "samsung_a50", "samsung_s7", "silver_4114", "titan_rtx_1"]


def test_a_reporting_run_cannot_report_a_tuning_setting():
    for p in (25, 50, 75):
        with pytest.raises(P.ProtocolError, match="tuning pair"):
            P.check_run("reporting", P.Setting("pixel3", "cifar10_test", p), 0)
    with pytest.raises(P.ProtocolError, match="reporting seeds"):
        P.check_run("reporting", P.Setting("raspi4", "cifar10_test", 50), 100)
    with pytest.raises(P.ProtocolError, match="not a reporting setting"):
        P.check_run("reporting", P.Setting("raspi4", "cifar10_test", 90), 0)
    P.check_run("reporting", P.Setting("pixel3", "cifar100_test", 25), 19)  # allowed
    # and execute() checks before it touches any data
    spec = P.RunSpec("reporting", P.TUNING_SETTING, "random", 0, "{}", 0)
    with pytest.raises(P.ProtocolError, match="tuning pair"):
        P.execute(spec, data=None)


def test_the_tuning_phase_refuses_reporting_settings_and_seeds():
    with pytest.raises(P.ProtocolError, match="belongs to the reporting set"):
        P.check_run("tuning", P.Setting("pixel3", "cifar10_test", 25), 100)
    with pytest.raises(P.ProtocolError, match="belongs to the reporting set"):
        P.check_run("tuning", P.Setting("raspi4", "cifar100_test", 50), 100)
    with pytest.raises(P.ProtocolError, match="tuning seeds"):
        P.check_run("tuning", P.TUNING_SETTING, 0)
    with pytest.raises(P.ProtocolError, match="unknown phase"):
        P.check_run("both", P.TUNING_SETTING, 100)
    P.check_run("tuning", P.TUNING_SETTING, 119)


def test_the_plans_are_disjoint_and_complete():
    settings = P.reporting_settings(DEVICES)
    assert len(settings) == 35 * 3 and P.TUNING_SETTING not in settings
    assert all(s.pair != ("pixel3", "cifar10_test") for s in settings)
    assert {s.pair for s in settings} >= {("pixel3", "cifar100_test"),
                                          ("pixel3", "imagenet16_test")}
    frozen = {"strategies": {s: {"config": 0, "options": {}} for s in P.STRATEGIES}}
    frozen["strategies"]["rl"] = {"config": 3, "options": {"elite_fraction": 0.1}}
    report = P.reporting_plan(DEVICES, frozen)
    tune = P.tuning_plan()
    assert len(report) == 105 * 20 * (len(P.STRATEGIES) + 2)
    # the multi-objective variants run with the frozen options of the strategy they extend
    sweep = [s for s in report if s.strategy == "rl-sweep"]
    assert len(sweep) == 105 * 20
    assert all(s.config == 3 and s.options == {"elite_fraction": 0.1} for s in sweep)
    assert all(s.config == 0 and s.options == {} for s in report if s.strategy == "motpe")
    assert len(tune) == 20 * sum(len(g) for g in P.TUNING_GRID.values())
    for spec in report + tune:
        P.check_run(spec.phase, spec.setting, spec.seed)
    assert not {(s.setting, s.seed) for s in report} & {(s.setting, s.seed) for s in tune}
    assert len({s.key for s in report}) == len(report)
    # strategy seeds: the seed when tuning; on the reporting set one per (setting, seed),
    # shared by the strategies of that run, never a tuning seed
    assert all(s.strategy_seed == s.seed for s in tune)
    per_run = {(s.setting, s.seed): set() for s in report}
    for s in report:
        per_run[(s.setting, s.seed)].add(s.strategy_seed)
    assert all(len(v) == 1 for v in per_run.values())
    seeds = [next(iter(v)) for v in per_run.values()]
    assert len(set(seeds)) == len(seeds) and not set(seeds) & set(P.TUNING_SEEDS)
    first = report[:len(P.ALL_STRATEGIES) * 30]  # a first chunk: seed 0, settings spread out
    assert {s.seed for s in first} == {0}
    assert len({s.setting.device for s in first}) >= 8
    assert {s.setting.dataset for s in first} == set(P.DATASETS)
    with pytest.raises(P.ProtocolError, match="lack rl"):
        P.reporting_plan(DEVICES, {"strategies": {s: {"config": 0, "options": {}}
                                                  for s in P.STRATEGIES if s != "rl"}})


def test_every_strategy_gets_the_same_tuning_budget():
    from mobile_nas.search.sampler import make_sampler
    from mobile_nas.space import get_space

    assert set(P.TUNING_GRID) == set(P.STRATEGIES)
    sizes = {s: len(g) for s, g in P.TUNING_GRID.items() if s != "random"}
    assert set(sizes.values()) == {P.K}, sizes  # rl included
    assert P.TUNING_GRID["random"] == [{}]  # nothing to tune
    space = get_space("nb201")
    for s, grid in P.TUNING_GRID.items():
        assert grid[0] == {}  # configuration 0: the defaults
        assert len({json.dumps(o, sort_keys=True) for o in grid}) == len(grid)
        for options in grid:
            make_sampler(s, space=space, seed=0, **options)  # every option is valid


def test_interleave_takes_one_of_each_part_in_turn():
    assert P.interleave([[1, 2, 3], [10, 20, 30], [7, 8]]) == [1, 10, 7, 2, 20, 8, 3, 30]
    assert P.interleave([]) == []


def _spec(seed, phase="tuning", setting=None):
    return P.RunSpec(phase, setting or P.TUNING_SETTING, "random", 0, "{}", seed)


def _record(spec):
    return {"key": spec.key, "phase": spec.phase, "setting": spec.setting.key,
            "seed": spec.seed, "strategy": spec.strategy, "indices": [1, 2, 1],
            "repeats": [2]}


def test_store_resumes_without_losing_or_repeating(tmp_path):
    plan = [_spec(s) for s in (100, 101, 102)]
    store = RunStore(tmp_path / "tuning.jsonl")
    first = store.claim_next(plan)
    assert first == plan[0]
    assert store.claim_next(plan) == plan[1]  # plan[0] is claimed by this (live) process
    store.append(_record(first))
    store.release(plan[1].key)
    # a new process (a fresh store object) sees the stored run and skips it
    again = RunStore(tmp_path / "tuning.jsonl")
    assert again.done() == {plan[0].key}
    assert again.claim_next(plan) == plan[1]


def test_packed_runs_are_read_back_and_a_sharing_process_notices(tmp_path):
    store = RunStore(tmp_path / "reporting.jsonl")
    other = RunStore(tmp_path / "reporting.jsonl")  # another process on the same store
    for seed in range(3):
        store.append(_record(_spec(seed)))
    assert len(other.done()) == 3
    with open(store.path, "ab") as fh:
        fh.write(b'{"key": "torn')  # a kill in the middle of an append
    assert store.pack() == 3
    assert store.path.read_bytes() == b"" and len(store.parts()) == 1
    store.append(_record(_spec(3)))
    assert RunStore(tmp_path / "reporting.jsonl").done() == {_spec(k).key for k in range(4)}
    assert other.done() == {_spec(k).key for k in range(4)}  # re-read after the pack
    assert store.pack() == 1 and len(store.parts()) == 2
    assert RunStore(tmp_path / "reporting.jsonl").done() == {_spec(k).key for k in range(4)}
    assert store.pack() == 0


def test_a_torn_line_is_ignored_and_the_next_append_is_whole(tmp_path):
    plan = [_spec(s) for s in (100, 101)]
    store = RunStore(tmp_path / "tuning.jsonl")
    store.append(_record(plan[0]))
    with open(store.path, "ab") as fh:
        fh.write(b'{"key": "tuning:pixel3/cifar10_test/p50:random#0:101", "ind')  # killed
    fresh = RunStore(tmp_path / "tuning.jsonl")
    assert fresh.done() == {plan[0].key}
    fresh.append(_record(plan[1]))
    last = RunStore(tmp_path / "tuning.jsonl")
    assert last.done() == {plan[0].key, plan[1].key} and last.torn == 1


def test_a_dead_process_claim_is_taken_over(tmp_path):
    plan = [_spec(100)]
    store = RunStore(tmp_path / "tuning.jsonl")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket
    import time

    store._claim_path(plan[0].key).write_text(json.dumps(
        {"key": plan[0].key, "host": socket.gethostname(), "pid": dead.pid,
         "time": time.time()}))
    assert store.claim_next(plan) == plan[0]


def test_a_reporting_store_holding_a_tuning_setting_is_refused(tmp_path):
    store = RunStore(tmp_path / "reporting.jsonl")
    bad = _spec(0, phase="reporting", setting=P.Setting("pixel3", "cifar10_test", 75))
    store.append(_record(bad))
    with pytest.raises(P.ProtocolError, match="tuning pair"):
        P.checked_records(store, "reporting")


@pytest.mark.skipif(not (DATA / "accuracy.csv").is_file(), reason="needs ../shared/data/nb201")
def test_runs_end_to_end_with_stored_indices(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "QUERIES", 12)
    monkeypatch.setattr(P, "DISTINCT", 12)
    monkeypatch.setattr(P, "QUERY_CAP", 40)
    data = D.Nb201Data(DATA)
    plan = [P.RunSpec("tuning", P.TUNING_SETTING, s, 0, "{}", 100) for s in ("tpe", "local")]
    store = RunStore(tmp_path / "tuning.jsonl")
    assert P.work(plan, store, data, max_runs=1, max_minutes=None) == 1  # a chunk
    assert P.work(plan, store, data, max_runs=None, max_minutes=None) == 1  # the rest
    assert P.work(plan, store, data, max_runs=None, max_minutes=None) == 0  # nothing twice
    records = {r["strategy"]: r for r in store.records()}
    for r in records.values():
        assert r["distinct"] >= 12 and r["queries"] >= 12
        assert r["repeats"] == [i for i, f in enumerate(
            P.repeat_flags(r["indices"])) if f]
        m = M.Metrics(data).of(r)
        assert len(m["regret_query"]) == 12 and (m["regret_query"] >= 0).all()
        assert 0 < m["hv2_query_10"] <= 1 and 0 < m["hv3_query_10"] <= 1
    assert records["local"]["repeats"] == []  # local search never re-asks


@pytest.mark.skipif(not (DATA / "accuracy.csv").is_file(), reason="needs ../shared/data/nb201")
def test_the_front_strategies_run_and_rl_sweep_interleaves_its_targets(tmp_path, monkeypatch):
    monkeypatch.setattr(P, "QUERIES", 12)
    monkeypatch.setattr(P, "DISTINCT", 12)
    monkeypatch.setattr(P, "QUERY_CAP", 40)
    data = D.Nb201Data(DATA)
    setting = P.Setting("fpga", "cifar10_test", 50)
    sweep = P.execute(P.RunSpec("reporting", setting, "rl-sweep", 0, "{}", 0), data)
    lat = data.latency("fpga")
    assert [part["percentile"] for part in sweep["sweep"]] == [25, 50, 75]
    assert [part["queries"] for part in sweep["sweep"]] == [4, 4, 4]
    assert sweep["queries"] == 12 and sweep["stopped"] == "budget"
    for part in sweep["sweep"]:
        assert part["target_ms"] == pytest.approx(float(P.np.percentile(lat,
                                                                         part["percentile"])))
    # the soft-reward run at the 25th percentile is not the one at the 75th
    assert sweep["indices"][0::3] != sweep["indices"][2::3]
    assert sweep["repeats"] == [i for i, f in enumerate(P.repeat_flags(sweep["indices"])) if f]
    motpe = P.execute(P.RunSpec("reporting", setting, "motpe", 0, "{}", 0), data)
    assert motpe["queries"] >= 12 and motpe["distinct"] >= 12
    for r in (sweep, motpe):
        m = M.Metrics(data).of(r)
        assert 0 < m["hv2_query_10"] <= 1 and 0 < m["hv3_query_10"] <= 1


@pytest.mark.skipif(not (DATA / "accuracy.csv").is_file(), reason="needs ../shared/data/nb201")
def test_report_is_generated_from_stored_runs_and_states_coverage(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setattr(P, "QUERIES", 12)
    monkeypatch.setattr(P, "DISTINCT", 12)
    monkeypatch.setattr(P, "BUDGETS", (5, 10))
    monkeypatch.setattr(P, "KEY_BUDGETS", (5, 10))
    rng = np.random.default_rng(0)

    def fake(spec, frozen_sha=None):  # stored runs as execute() writes them, made up
        idx = rng.choice(15625, 14).tolist()
        idx[3] = idx[1]  # one repeat
        rec = {**_record(spec), "config": spec.config, "options": spec.options,
               "strategy_seed": spec.strategy_seed,
               "indices": idx, "repeats": [3], "queries": 14, "distinct": 13,
               "stopped": "budget", "seconds": 0.1, "cpu_seconds": 0.05}
        if frozen_sha:
            rec["frozen_sha256"] = frozen_sha
        return rec

    tuning = RunStore(tmp_path / "tuning.jsonl")
    for spec in P.tuning_plan()[:40]:
        tuning.append(fake(spec))
    frozen = {"strategies": {s: {"config": 0, "options": {}} for s in P.STRATEGIES}}
    (tmp_path / "frozen.json").write_text(json.dumps(frozen))
    sha = P.sha256_file(tmp_path / "frozen.json")
    reporting = RunStore(tmp_path / "reporting.jsonl")
    settings = [P.Setting("raspi4", "cifar100_test", 50), P.Setting("fpga", "cifar10_test", 25)]
    for spec in P.reporting_plan(DEVICES, frozen):
        if spec.setting in settings and spec.seed < 3:
            reporting.append(fake(spec, sha))
    extra = P.reporting_plan(DEVICES, frozen)[0]  # a run no other strategy matched
    reporting.append(fake(P.RunSpec(extra.phase, P.Setting("eyeriss", "cifar10_test", 75),
                                    "rl", 0, "{}", 7), sha))
    out = tmp_path / "r"
    assert ENTRY.main(["report", "--store", str(tmp_path), "--out", str(out),
                   "--data", str(DATA)]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    s = result["reporting"]
    assert s["matched_runs"] == 6 and s["stored_runs"] == 2 * 3 * 6 + 1
    assert s["settings_covered"] == 2 and len(s["uncovered_settings"]) == 103
    assert len(s["tests"]) == len(S.TESTED_METRICS) * 2 * len(S.comparisons())
    f = s["front"]  # the eight-strategy hypervolume comparison, its own Holm family
    assert f["matched_runs"] == 6 and set(f["all"]) == set(P.ALL_STRATEGIES)
    assert len(f["tests"]) == len(S.FRONT_METRICS) * 2 * len(S.front_comparisons())
    for key, rank in f["rl_sweep_rank"].items():  # 1 + how many have a larger fraction
        mine = f["all"]["rl-sweep"][key][0]
        assert rank == 1 + sum(row[key][0] > mine for row in f["all"].values())
    assert all(0 <= t["p"] <= t["p_holm"] <= 1 for t in s["tests"])
    md = out.with_suffix(".md").read_text()
    assert "36 of 12600 planned runs" not in md and "37 of 12600 planned runs" in md
    assert "seeds 0-2 on 2 settings" in md and "Not run yet: 103 settings" in md
    assert "## Multi-objective front" in md and "6 runs per strategy on 2 settings" in md
    assert s["projected_cpu_hours"]["left"] == pytest.approx(  # six + two front strategies
        8 * 0.05 * (105 * 20 - 6) / 3600)
    assert "6 of 2100 by `motpe` and `rl-sweep` too" in md
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    # a reporting run made with other frozen settings is refused
    reporting.append(fake(P.RunSpec("reporting", P.Setting("fpga", "cifar10_test", 75),
                                    "rl", 0, "{}", 0), "another"))
    assert ENTRY.main(["report", "--store", str(tmp_path), "--out", str(out),
                   "--data", str(DATA)]) == 2
