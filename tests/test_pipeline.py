"""The demo pipeline as a library call (mobile_nas.pipeline)."""

import json
import shutil
from pathlib import Path

import pytest

from mobile_nas.cost.latency import shipped_table_path
from mobile_nas.pipeline import SEARCH_TABLE, DemoConfig, _finished_search, run_demo
from mobile_nas.report.deploy import DEPLOY_FILE, DeployRecord
from mobile_nas.report.protocol import file_sha256
from mobile_nas.train.data import DEBIAN_FASHION_MNIST

OLD_RUN = Path(__file__).resolve().parent / "fixtures" / "demo_run_v1"
TABLE = shipped_table_path("fmnist28")


def _old_run(tmp_path: Path) -> Path:
    """The fixture's search, recorded as made with the shipped fmnist28 table."""
    run = tmp_path / "search"
    shutil.copytree(OLD_RUN, run)
    (run / SEARCH_TABLE).write_text(json.dumps({"table": str(TABLE),
                                                "sha256": file_sha256(TABLE)}))
    return run


@pytest.mark.parametrize("changes, reused", [
    ({}, True),
    ({"trials": 2}, True),  # more trials than asked: still good
    ({"trials": 4}, False),
    ({"latency_target_ms": 0.5}, False),
])
def test_a_finished_search_is_reused_only_with_the_same_settings(tmp_path, changes, reused):
    """The fixture's search: fmnist28, rl, hard reward, target 0.4 ms, 3 trials."""
    run = _old_run(tmp_path)
    config = DemoConfig(out_dir=tmp_path, trials=3, latency_target_ms=0.4, verify_top=0)
    for key, value in changes.items():
        config = DemoConfig(**{**config.__dict__, key: value})
    best = _finished_search(run, config, TABLE)
    assert (best is not None) == reused
    if reused:
        assert best == json.loads((OLD_RUN / "best.json").read_text())


def test_a_soft_reward_search_is_not_reused(tmp_path):
    run = _old_run(tmp_path)
    pareto = json.loads((run / "pareto.json").read_text())
    pareto["reward_fn"]["kind"] = "soft"
    (run / "pareto.json").write_text(json.dumps(pareto))
    assert _finished_search(run, DemoConfig(trials=3, verify_top=0), TABLE) is None


def test_a_search_made_with_another_table_is_not_reused(tmp_path):
    run = _old_run(tmp_path)
    config = DemoConfig(out_dir=tmp_path, trials=3, latency_target_ms=0.4, verify_top=0)
    assert _finished_search(run, config, TABLE) is not None
    other = tmp_path / "other.json"
    other.write_text(TABLE.read_text() + "\n")
    assert _finished_search(run, config, other) is None
    (run / SEARCH_TABLE).unlink()  # a search from before the demo recorded its table
    assert _finished_search(run, config, TABLE) is None


def test_out_dir_that_is_a_file_is_refused(tmp_path):
    from mobile_nas.errors import MobileNasError

    (tmp_path / "f").write_text("")
    with pytest.raises(MobileNasError, match="exists and is not a folder"):
        run_demo(DemoConfig(out_dir=tmp_path / "f"))


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_run_demo_returns_what_it_wrote_and_resumes(tmp_path):
    import torch

    threads = torch.get_num_threads()
    config = DemoConfig(out_dir=tmp_path / "demo", trials=3, epochs=1, train_subset=500,
                        threads=1, table="shipped")
    lines: list[str] = []
    try:
        first = run_demo(config, log=lines.append)
        second = run_demo(config, log=lines.append)
    finally:
        torch.set_num_threads(threads)
    assert not first.reused_search and not first.reused_model
    assert second.reused_search and second.reused_model
    stages = [s.split()[1] for s in lines if s.startswith("== ")]
    assert stages[-5:] == ["1/5", "2/5", "3/5", "4/5", "5/5"] and lines[-1] == "== 5/5 done"
    d = first.deploy
    assert DeployRecord.load(first.run_dir / DEPLOY_FILE) != d  # the second run rewrote it
    assert DeployRecord.load(second.run_dir / DEPLOY_FILE) == second.deploy
    assert DeployRecord.load(tmp_path / "demo" / "summary.json") == second.deploy
    assert d.arch == first.best["arch"] == second.deploy.arch
    # the record describes the files it names, read back independently of run_demo
    import onnx

    from mobile_nas.cost.model_costs import model_costs
    from mobile_nas.space import Architecture
    from mobile_nas.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(d.train.path)
    assert ckpt.arch == d.arch and ckpt.metrics["test_accuracy"] == d.train.test_accuracy
    meta = {p.key: p.value for p in onnx.load(d.export.path).metadata_props}
    assert meta["arch"] == d.arch and Path(d.export.path).resolve() == first.onnx_path.resolve()
    costs = model_costs(Architecture.from_string(d.arch, "fmnist28"))
    assert (d.macs, d.params) == (costs.macs, costs.params)
    assert d.export.max_abs_diff <= 1e-4 and d.export_mobile.profile == "mobile"
    assert Path(d.train.path) == first.model_path and first.model_path.is_file()
    assert first.report.html.is_file()
    from mobile_nas.cost.latency import LatencyTable, shipped_table_path

    shipped = shipped_table_path("fmnist28")  # the table the demo predicts with
    assert d.latency_table == str(shipped)
    assert d.predicted_statistic == LatencyTable.load(shipped).predicts


def test_the_int8_prediction_comes_from_an_int8_table_only():
    from mobile_nas.cost.latency.table import shipped_table_path
    from mobile_nas.pipeline import _int8_prediction
    from mobile_nas.space import Architecture

    arch = Architecture.from_string(
        "ds_k3_n1_c16_relu|mb3_k3_n1_c40_relu|mb3_k5_n2_c40_relu|mb6_k5_n3_c64_relu", "fmnist28")
    said = []
    ms, statistic = _int8_prediction(arch, shipped_table_path("fmnist28", "int8"), said.append)
    assert ms > 0 and statistic == "wall-clock median" and not said
    # the fp32 table is refused for an INT8 prediction: no number, one line saying why
    assert _int8_prediction(arch, shipped_table_path("fmnist28"), said.append) is None
    assert len(said) == 1 and "precision fp32" in said[0]


def test_a_millisecond_target_search_is_not_reused_for_a_reference_target(tmp_path):
    """The fixture searched under 0.4 ms; the default demo's target is fmnist28_mnasnet placed
    by 10 probes, and it needs the finalists' timing (best.json's 'verified') to reuse a
    search."""
    run = _old_run(tmp_path)
    unprobed = DemoConfig(out_dir=tmp_path, trials=3, probe_reference=0)
    assert _finished_search(run, DemoConfig(out_dir=tmp_path, trials=3), TABLE) is None
    pareto_path = tmp_path / "search" / "pareto.json"
    pareto = json.loads(pareto_path.read_text())
    pareto["latency_target"] = {"reference": "fmnist28_mnasnet", "factor": 1.0}
    pareto_path.write_text(json.dumps(pareto))
    assert _finished_search(run, unprobed, TABLE) is None
    best_path = tmp_path / "search" / "best.json"
    best = json.loads(best_path.read_text())
    best_path.write_text(json.dumps({**best, "verified": {"chosen": best["arch"]}}))
    assert _finished_search(run, unprobed, TABLE)
    assert _finished_search(run, DemoConfig(
        out_dir=tmp_path, trials=3, latency_target="0.9xfmnist28_mnasnet"), TABLE) is None
    # a target placed by 10 probes (the default) is another target than the unprobed one
    assert _finished_search(run, DemoConfig(out_dir=tmp_path, trials=3), TABLE) is None
    pareto["latency_target"]["probe"] = {"probes": ["a"] * 10}
    pareto_path.write_text(json.dumps(pareto))
    assert _finished_search(run, DemoConfig(out_dir=tmp_path, trials=3), TABLE)
    assert _finished_search(run, unprobed, TABLE) is None


def test_the_demo_says_when_the_shipped_table_was_timed_on_another_cpu():
    from mobile_nas.pipeline import other_cpu_note

    amd, intel = "AMD EPYC 7B13", "Intel(R) Xeon(R) Processor @ 2.80GHz"
    assert other_cpu_note("fmnist28.json", amd, amd) is None
    assert other_cpu_note("fmnist28.json", None, intel) is None  # unknown: nothing to say
    note = other_cpu_note("fmnist28.json", amd, intel)
    assert amd in note and intel in note and "timing the finalists here" in note


def test_the_table_of_this_machine_is_the_shipped_one_only_if_timed_on_its_cpu(tmp_path):
    from mobile_nas.cost.latency import LatencyTable
    from mobile_nas.cost.latency.build import (
        LutBuildResult,
        pass_path,
        table_for_this_machine,
    )
    from mobile_nas.cost.latency.runner import cpu_model
    from mobile_nas.space import get_space

    space = get_space("fmnist28")
    table = LatencyTable.load(TABLE)

    def shipped_on(cpu: str) -> Path:
        path = tmp_path / f"shipped_{len(cpu)}.json"
        LatencyTable(space=table.space, metadata={**table.metadata, "cpu": cpu},
                     entries=table.entries, calibration=table.calibration).save(path)
        return path

    built: list[Path] = []

    def build(out: Path) -> LutBuildResult:
        built.append(out)
        LatencyTable(space=table.space, metadata={**table.metadata, "cpu": cpu_model()},
                     entries=table.entries, calibration=table.calibration).save(out)
        return LutBuildResult(table=LatencyTable.load(out), path=out, calibrated=True)

    here = shipped_on(cpu_model())
    chosen = table_for_this_machine(space, here, tmp_path / "demo", build=build)
    assert chosen.path == here and not chosen.built_here and not built
    said: list[str] = []
    other = shipped_on("Some Other CPU @ 1.00GHz")
    (tmp_path / "demo").mkdir()
    stale = tmp_path / "demo" / "fmnist28_table.json"
    stale.write_text(other.read_text())  # a build of another machine, left in the folder
    stale_pass = pass_path(stale, 1)  # and one of its passes
    stale_pass.write_text(other.read_text())
    chosen = table_for_this_machine(space, other, tmp_path / "demo", log=said.append,
                                    build=build)
    assert chosen.built_here and chosen.path == stale and built == [stale]
    assert not stale_pass.exists()  # not resumed into this machine's passes
    assert "3 passes" in said[0]
    assert LatencyTable.load(stale).metadata["cpu"] == cpu_model()
    assert len(said) == 1 and "Some Other CPU" in said[0] and cpu_model() in said[0]
    assert "built here" in chosen.reason
