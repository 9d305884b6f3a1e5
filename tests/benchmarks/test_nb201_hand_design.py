"""benchmarks/nb201_hand_design.py: the speed-up at the reference's accuracy on a crafted
table, the exhaustive best on the real data for Pixel 3 and a server GPU, the protocol guard,
and (with the NB201 data) runs and a report end to end on a tiny budget."""

import json
from pathlib import Path

import numpy as np
import pytest

from tests.benchmarks import load_script

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "nb201"
needs_data = pytest.mark.skipif(not (DATA / "accuracy.csv").is_file(),
                                reason="needs ../shared/data/nb201")

H = load_script("nb201_hand_design")

#               cell:   0     1     2     3     4     5     6
ACC = np.array([0.90, 0.80, 0.92, 0.90, 0.95, 0.70, 0.91])
LAT = np.array([10.0, 4.0, 8.0, 5.0, 12.0, 1.0, 5.0])
REF = 0  # accuracy 0.90 at 10 ms


def test_speedup_at_the_reference_accuracy_on_a_crafted_table():
    # as accurate as cell 0: cells 0, 2, 3, 4, 6; the fastest among the queried ones counts
    assert H.speedup_at_reference([1, 2, 4, 5], ACC, LAT, REF) == (10.0 / 8.0, 2)
    # cells 3 and 6 tie at 5 ms: the more accurate (6) is the pick; 10 / 5 = 2
    assert H.speedup_at_reference([4, 3, 6, 2], ACC, LAT, REF) == (2.0, 6)
    # equal accuracy qualifies (cell 3: 0.90 >= 0.90); repeats change nothing
    assert H.speedup_at_reference([3, 3, 1], ACC, LAT, REF) == (2.0, 3)
    # only slower cells as accurate: a speed-up below 1
    assert H.speedup_at_reference([4, 1, 5], ACC, LAT, REF) == (10.0 / 12.0, 4)
    # the fast cells 1 and 5 are less accurate: none found scores 0
    assert H.speedup_at_reference([1, 5], ACC, LAT, REF) == (0.0, None)
    # exhaustive: the fastest of {0, 2, 3, 4, 6} is 3 or 6 at 5 ms (6 more accurate)
    assert H.best_speedup(ACC, LAT, REF) == (2.0, 6, 5)
    # the frontier: the best accuracy at most as slow as 5 ms is cell 6's
    assert H.frontier_accuracy(ACC, LAT, 5.0) == 0.91
    assert H.frontier_accuracy(ACC, LAT, 0.5) == float("-inf")


def test_the_plan_and_the_guard():
    devices = ["pixel3", "raspi4"]
    runs = H.plan(devices)
    assert len(runs) == 2 * 3 * len(H.STRATEGIES) * 20
    assert len({r.key for r in runs}) == len(runs)
    assert {r.seed for r in runs[:2 * 3 * len(H.STRATEGIES)]} == {0}  # seed-major
    per = {}
    for r in runs:
        per.setdefault((r.device, r.dataset, r.seed), set()).add(r.strategy_seed)
    assert all(len(v) == 1 for v in per.values())  # one strategy seed per (dev, ds, seed)
    assert len({next(iter(v)) for v in per.values()}) == len(per)
    for bad, match in ((H.Run("pixel3", "cifar10_test", "tpe", 0), "strategy"),
                       (H.Run("pixel3", "cifar10_test", "rl", 20), "seeds"),
                       (H.Run("pixel3", "svhn", "rl", 0), "dataset"),
                       (H.Run("pixel9", "cifar10_test", "rl", 0), "device")):
        with pytest.raises(H.HandDesignError, match=match):
            H.check_run(bad, devices)


@needs_data
def test_the_exhaustive_best_speedup_on_the_real_data():
    from nb201.data import Nb201Data

    data = Nb201Data(DATA)
    ref = H.resnet_index(data)
    assert ref == 11472
    acc = {ds: 100 * data.accuracy(ds)[ref] for ds in H.DATASETS}
    assert [round(acc[ds], 2) for ds in H.DATASETS] == [93.91, 70.89, 44.23]
    pixel3 = data.latency("pixel3")
    speed, cell, n = H.best_speedup(data.accuracy("cifar10_test"), pixel3, ref)
    assert round(speed, 2) == 1.28 and n == 70
    assert data.accuracy("cifar10_test")[cell] >= data.accuracy("cifar10_test")[ref]
    speed, _, n = H.best_speedup(data.accuracy("imagenet16_test"), pixel3, ref)
    assert round(speed, 2) == 1.91 and n == 666
    # on a server GPU no cell is faster at the ResNet cell's CIFAR-10 accuracy
    speed, cell, _ = H.best_speedup(data.accuracy("cifar10_test"), data.latency("1080ti_1"),
                                    ref)
    assert speed == 1.0


@needs_data
def test_runs_and_report_end_to_end_on_a_tiny_budget(tmp_path, monkeypatch):
    from nb201.data import Nb201Data
    from nb201.store import RunStore

    monkeypatch.setattr(H, "QUERIES", 12)
    data = Nb201Data(DATA)
    options, sha = H.frozen_options()
    store = RunStore(tmp_path / "runs.jsonl")
    for s in ("local", "rl-sweep"):
        for ds in ("cifar10_test", "imagenet16_test"):
            run = H.Run("pixel3", ds, s, 0)
            rec = H.execute(run, data, options[s], sha)
            assert rec["queries"] == 12 and len(rec["indices"]) == 12
            store.append(rec)
    sweep = next(r for r in store.records() if r["strategy"] == "rl-sweep")
    assert [p["queries"] for p in sweep["sweep"]] == [4, 4, 4]
    local = next(r for r in store.records() if r["strategy"] == "local")
    assert local["target_ms"] == pytest.approx(float(data.latency("pixel3")[11472]))
    out = tmp_path / "r"
    assert H.main(["report", "--store", str(tmp_path), "--out", str(out),
                   "--data", str(DATA)]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    cell = result["summary"]["cells"]["pixel3/cifar10_test"]
    assert round(cell["best_speedup"], 2) == 1.28
    assert set(cell["strategies"]) == {"local", "rl-sweep"}
    assert "4 of 4320 planned runs stored" in out.with_suffix(".md").read_text()
    assert "pixel3/local" in result["summary"]["transfer"]
    # a record outside the protocol (another budget) is refused
    bad = {**local, "key": H.Run("pixel3", "cifar100_test", "local", 1).key,
           "dataset": "cifar100_test", "seed": 1,
           "strategy_seed": H.Run("pixel3", "cifar100_test", "local", 1).strategy_seed,
           "queries": 11, "indices": local["indices"][:11]}
    store.append(bad)
    assert H.main(["report", "--store", str(tmp_path), "--out", str(out),
                   "--data", str(DATA)]) == 2
