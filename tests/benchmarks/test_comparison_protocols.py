"""search_vs_groundtruth and e2e_fmnist under their committed protocols, without training or
timing anything: recorded runs outside the protocol are refused, the paired test and the
selection rule follow the protocol, the e2e goal needs all three of its conditions, and the
references' scaling rule takes the largest prediction within the target."""

import json
from datetime import timedelta
from types import SimpleNamespace as NS

import pytest

from tests.benchmarks import load_script

SVG = load_script("search_vs_groundtruth")
E2E = load_script("e2e_fmnist")


@pytest.fixture(scope="module")
def reg():
    return SVG.load_protocol(SVG.PROTOCOL)


def _record(reg, seed=1, strategy="rl", minutes=5, **over):
    art = reg.protocol.artifacts
    rec = {"strategy": strategy, "search_seed": seed, "budget": 120,
           "started_at": (reg.committed_at + timedelta(minutes=minutes)).isoformat(),
           "supernet_sha256": art["supernet"], "table_sha256": art["table"],
           "pick": "p", "supernet_accuracy": 0.9, "predicted_ms": 0.1}
    return {**rec, **over}


@pytest.mark.parametrize("over, message", [
    ({"search_seed": 11}, "search seed 11 is outside"),
    ({"search_seed": 0}, "search seed 0 is outside"),  # the demo's seed
    ({"budget": 40}, "budget 40 is outside"),
    ({"strategy": "tpe"}, "strategy 'tpe' is outside"),
    ({"supernet_sha256": "0" * 64}, "supernet sha256 000000000000 is not the protocol's"),
])
def test_a_recorded_search_outside_the_protocol_is_refused(reg, tmp_path, monkeypatch, over,
                                                           message):
    monkeypatch.setattr(SVG, "RUNS", tmp_path)
    (tmp_path / "ok.json").write_text(json.dumps(_record(reg)))
    assert list(SVG.load_runs(reg)) == ["ok"]
    (tmp_path / "bad.json").write_text(json.dumps(_record(reg, **over)))
    with pytest.raises(SVG.ProtocolError, match=message):
        SVG.load_runs(reg)


def test_a_search_started_before_the_protocol_is_refused(reg, tmp_path, monkeypatch):
    monkeypatch.setattr(SVG, "RUNS", tmp_path)
    (tmp_path / "old.json").write_text(json.dumps(_record(reg, minutes=-30)))
    with pytest.raises(SVG.ProtocolError, match="before protocol search_vs_groundtruth.json"):
        SVG.load_runs(reg)


def _rows(picks: dict[str, float]) -> dict:
    """(arch, seed) -> row with the given mean validation accuracy for both seeds."""
    return {(a, s): NS(val_accuracy=v + (0.001 if s else -0.001), test_accuracy=v)
            for a, v in picks.items() for s in (0, 1)}


def test_the_paired_test_and_the_candidate_follow_the_protocol(reg):
    runs, acc = {}, {}
    for k in range(1, 11):
        for strategy in reg.protocol.strategies:
            arch = f"{strategy}{k}"
            runs[f"{strategy}_s{k}"] = _record(reg, k, strategy, pick=arch,
                                               predicted_ms=0.1 + k / 100)
            # rl beats random at every seed, evolution at none; local ties rl exactly
            acc[arch] = {"rl": 0.87, "random": 0.86, "evolution": 0.88,
                         "local": 0.87}[strategy] + k / 1000
    acc["rl3"] = acc["rl10"]  # a tie for the best rl pick: the faster one (seed 3) wins
    for r in reg.protocol.references:
        acc[SVG.reference_arch(r)] = 0.86
    res = SVG.analyse(reg, runs, _rows(acc))
    tests = {t["b"]: t for t in res["tests"]}
    assert tests["random"]["p"] == pytest.approx(1 / 2 ** 10)  # exact: all 10 positive
    assert tests["random"]["p_holm"] == pytest.approx(3 / 2 ** 10)
    assert tests["random"]["rl_ahead"] and not tests["evolution"]["rl_ahead"]
    assert not tests["local"]["rl_ahead"]
    assert res["e2e_candidate"]["search_seed"] == 3
    page = SVG.render({**res, "date": "d", "protocol": "p.json", "protocol_commit": "c" * 40,
                       "protocol_committed_at": "t", "supernet_sha256": "s" * 64,
                       "table_sha256": "t" * 64, "command": "x",
                       "protocol_doc": {k: getattr(reg.protocol, k) for k in (
                           "question", "seeds", "selection_rule", "statistical_test",
                           "decision_rule")}})
    assert "**rl is not ahead of evolution**" in page and "Status: **complete**" in page


def test_a_partial_set_has_no_test_and_no_candidate(reg):
    runs = {"rl_s1": _record(reg, 1, pick="a"), "random_s1": _record(reg, 1, "random",
                                                                     pick="b")}
    res = SVG.analyse(reg, runs, _rows({"a": 0.9, "b": 0.8}))
    assert res["e2e_candidate"] is None
    assert all(not t["complete"] and "p" not in t for t in res["tests"])
    assert res["progress"]["searches_done"] == 2 and res["progress"]["searches_planned"] == 40


@pytest.fixture(scope="module")
def e2e_reg():
    return E2E.prot.load_protocol(E2E.PROTOCOL)


def _e2e_runs(e2e_reg, means: dict[str, float]) -> dict:
    runs = {}
    for model, m in means.items():
        for s in e2e_reg.protocol.seeds["training"]:
            runs[f"{model}_s{s}"] = {"model": model, "seed": s, "test_accuracy": m + s / 1e4,
                                     "val_accuracy": m, "macs": 1, "params": 1,
                                     "train_cpu_s": 1.0}
    return runs


@pytest.mark.parametrize("gap, ratio, met", [
    (0.010, 0.98, True), (0.010, 1.02, False), (0.002, 0.98, False)])
def test_the_e2e_goal_needs_gap_p_and_latency(e2e_reg, monkeypatch, gap, ratio, met):
    monkeypatch.setattr(E2E, "searched_arch", lambda: "arch")
    refs = [r["name"] for r in e2e_reg.protocol.references]
    runs = _e2e_runs(e2e_reg, {"searched": 0.90 + gap, refs[0]: 0.90, refs[1]: 0.89,
                               refs[2]: 0.88})
    ref_names = {n for n, r in runs.items() if r["model"] == "fmnist28_mnasnet"}
    timing = {"runs": [{n: (1.0 if n in ref_names else ratio if n.startswith("searched")
                            else 0.9) for n in runs} for _ in range(5)]}
    res = E2E.analyse(e2e_reg, runs, timing)
    goal = res["goal"]
    assert goal["best_reference"] == "fmnist28_mnasnet"
    assert goal["latency_ratio"] == pytest.approx(ratio)
    assert (goal["gap_ok"] and goal["p_ok"] and goal["latency_ok"]) is met


def test_the_e2e_page_is_in_progress_until_every_run_is_in(e2e_reg, monkeypatch):
    monkeypatch.setattr(E2E, "searched_arch", lambda: None)
    runs = _e2e_runs(e2e_reg, {"fmnist28_mnasnet": 0.9})
    res = E2E.analyse(e2e_reg, runs, None)
    assert res["goal"] is None and res["progress"] == {"runs_done": 6, "runs_planned": 24}


def test_scaling_takes_the_largest_prediction_within_the_target():
    from mobile_nas.space import get_space

    space = get_space("fmnist28")
    pattern = "ds_k3_n1_c16_relu|mb6_k3_n3_c40_relu|mb6_k3_n1_c48_relu|mb6_k3_n1_c96_relu"

    def size(arch: str) -> float:  # a stand-in latency: channels x layers
        return sum(int(t.split("_c")[1].split("_")[0]) * int(t.split("_n")[1].split("_")[0])
                   for t in arch.split("|"))

    assert E2E.scale_to_target(space, pattern, size, size(pattern))[:2] == (1.0, 1.0)
    width, depth, arch = E2E.scale_to_target(space, pattern, size, 200)
    assert size(arch) <= 200
    assert all(size(a) <= size(arch) or size(a) > 200 for a in [
        E2E.scale_to_target(space, pattern, size, t)[2] for t in (150, 180, 200)])
    assert E2E.scale_to_target(space, pattern, size, 10) is None


def test_the_e2e_page_says_which_checkpoint_was_retrained_and_whether_it_reproduced(
        e2e_reg, monkeypatch):
    monkeypatch.setattr(E2E, "searched_arch", lambda: None)
    res = E2E.analyse(e2e_reg, _e2e_runs(e2e_reg, {"fmnist28_mnasnet": 0.9}), None)
    restored = {"fmnist28_mnasnet_s0": {
        "restored_at": "t", "checkpoint": "x.pt", "val_accuracy": 0.9236,
        "test_accuracy": 0.9190, "recorded_val_accuracy": 0.9236,
        "recorded_test_accuracy": 0.9191, "reproduced": False}}
    page = E2E.render({**res, "date": "d", "protocol": "p.json", "protocol_commit": "c" * 40,
                       "protocol_committed_at": "t", "supernet_sha256": "s" * 64,
                       "table_sha256": "t" * 64, "command": "x", "timing": None,
                       "restored": restored,
                       "protocol_doc": {k: getattr(e2e_reg.protocol, k) for k in (
                           "question", "seeds", "epochs", "references", "latency_target",
                           "recipe", "selection_rule", "statistical_test", "decision_rule",
                           "timing")}})
    assert "Checkpoint of fmnist28_mnasnet_s0 lost" in page
    assert "test 91.90% (recorded 92.36%, 91.91%): not reproduced exactly." in page


def test_the_committed_search_page_is_recomputed_from_the_committed_runs(reg):
    """benchmarks/results/search_vs_groundtruth.{json,md}: every figure follows from the
    committed search records and stand-alone rows, and the page from the JSON."""
    from mobile_nas.space import get_space
    from mobile_nas.train.groundtruth import load_ground_truth

    committed = json.loads(SVG.OUT.with_suffix(".json").read_text())
    gt = load_ground_truth(SVG.GROUND_TRUTH, get_space(reg.protocol.space))
    fresh = SVG.analyse(reg, SVG.load_runs(reg), SVG.trained(gt))
    assert {k: committed[k] for k in fresh} == json.loads(json.dumps(fresh))
    assert SVG.render(committed) == SVG.OUT.with_suffix(".md").read_text()
