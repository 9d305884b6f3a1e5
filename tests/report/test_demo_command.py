"""``mobile-nas demo``: what it prints of the pipeline's result (fast, a fake pipeline
returning the recorded fixture run), and end to end (slow: it trains a supernet and a
network)."""

import json
from dataclasses import replace
from pathlib import Path

import pytest

from mobile_nas.train.data import DEBIAN_FASHION_MNIST

#: A demo RUN_DIR written by release d8852eb (tests/fixtures/demo_run_v1/README.md).
OLD_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "demo_run_v1"


configs: list = []  # the DemoConfig of each faked run


def _demo_output(run_cli, monkeypatch, tmp_path, *table: str, **record) -> list[str]:
    """stdout lines of ``mobile-nas demo`` with the fixture's record (plus ``record``) as
    the pipeline's result; nothing is searched, trained, exported or timed."""
    import mobile_nas.commands.demo as demo_command
    import mobile_nas.pipeline as pipeline
    from mobile_nas.report.build import ReportFiles
    from mobile_nas.report.deploy import DeployRecord

    deploy = replace(DeployRecord.load(OLD_RUN / "deploy.json"), **record)
    configs.clear()

    def fake_run_demo(config, *, log=None):
        configs.append(config)
        return pipeline.DemoResult(
            out_dir=tmp_path, run_dir=tmp_path / "search", model_path=tmp_path / "model.pt",
            onnx_path=tmp_path / "model.onnx",
            best=json.loads((OLD_RUN / "best.json").read_text()), deploy=deploy,
            report=ReportFiles(html=tmp_path / "search" / "report.html", images={},
                               notes=()),
            reused_search=True, reused_model=True)

    monkeypatch.setattr(demo_command, "run_demo", fake_run_demo)
    code, out, err = run_cli("demo", "--out", str(tmp_path), *table)
    assert code == 0, err
    return out.splitlines()


def test_demo_names_the_measured_and_the_predicted_statistic(run_cli, monkeypatch, tmp_path):
    """The legacy shipped fmnist28 table predicts the CPU-clock minimum, not the wall-clock
    median the demo measures: both are named, with the table."""
    lines = _demo_output(run_cli, monkeypatch, tmp_path, predicted_statistic="cpu-clock min",
                         latency_table="/site-packages/mobile_nas/latency_tables/fmnist28.json")
    assert ("latency        measured wall-clock median (p50) fp32 0.096 ms, int8 0.135 ms "
            "(batch 1, 1 thread); predicted cpu-clock min 0.301 ms (table fmnist28.json, "
            "target fmnist28_mnasnet)") in lines
    start = lines.index("vs hand design (fp32, batch 1, 1 thread, one interleaved timing run; "
                        "accuracy: stand-alone 1-epoch ground truth, validation)")
    assert lines[start + 1:start + 5] == [
        "  measured wall-clock median; predicted cpu-clock min (table fmnist28.json)",
        "  searched               measured 0.097 ms (predicted 0.301 ms); "
        "not in the ground-truth set",
        "  fmnist28_mnasnet       measured 0.122 ms (predicted 0.400 ms); val 87.16%",
        "  fmnist28_mobilenet_v2  measured 0.139 ms (predicted 0.399 ms); val 86.10%"]


def test_demo_prints_the_int8_prediction_next_to_the_int8_measurement(run_cli, monkeypatch,
                                                                    tmp_path):
    lines = _demo_output(run_cli, monkeypatch, tmp_path, predicted_int8_ms=0.1504,
                         predicted_int8_statistic="wall-clock median",
                         int8_latency_table="/x/latency_tables/fmnist28_int8.json")
    assert ("INT8 latency   measured 0.135 ms, predicted wall-clock median 0.150 ms "
            "(fmnist28_int8.json)") in lines
    assert not any(line.startswith("INT8 latency") for line in
                   _demo_output(run_cli, monkeypatch, tmp_path))  # no INT8 table: no line


def test_a_record_without_the_statistic_prints_no_guess(run_cli, monkeypatch, tmp_path):
    """A record written before the statistic was recorded (the fixture as it is)."""
    lines = _demo_output(run_cli, monkeypatch, tmp_path)
    assert ("latency        measured wall-clock median (p50) fp32 0.096 ms, int8 0.135 ms "
            "(batch 1, 1 thread); predicted 0.301 ms (table, target fmnist28_mnasnet)") in lines
    assert "  measured wall-clock median; predicted (table)" in lines


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_demo_produces_report_onnx_files_and_summary(run_cli, tmp_path):
    out = tmp_path / "demo"
    args = ("demo", "--out", str(out), "--trials", "6", "--epochs", "1",
            "--train-subset", "3000", "--threads", "1", "--table", "shipped")
    code, stdout, stderr = run_cli(*args)
    assert code == 0, stderr
    for name in ("model.pt", "model.onnx", "model.int8.onnx", "search/report.html",
                 "search/best.json", "search/pareto.png", "search/reward.png",
                 "search/arch.png", "summary.json"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["export"]["max_abs_diff"] <= 1e-4
    assert summary["export"]["int8"]["accuracy_drop"] <= 0.01
    assert "test accuracy" in stdout and "report" in stdout and "MACs" in stdout
    # a second run resumes: nothing is retrained
    code, _, stderr = run_cli(*args)
    assert code == 0 and f"reusing {out / 'model.pt'}" in stderr


def test_demo_table_option_reaches_the_pipeline(run_cli, monkeypatch, tmp_path):
    _demo_output(run_cli, monkeypatch, tmp_path)
    assert configs[-1].table is None  # default: the table of this machine
    _demo_output(run_cli, monkeypatch, tmp_path, "--table", "shipped")
    assert configs[-1].table == "shipped"


@pytest.mark.ci
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_the_demo_on_a_small_budget_writes_verified_deployables(run_cli, tmp_path):
    """What a user runs first, in the default run: ``mobile-nas demo`` end to end on a small
    budget (5 trials, 1 epoch on 2,000 images; the finalists are not timed, ``--verify-top
    0``; the shipped table, so no table is built on a CPU it was not timed on). Asserts on
    the files it writes and what they record, never on a timing."""
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli("demo", "--out", str(out), "--trials", "5", "--epochs", "1",
                                   "--train-subset", "2000", "--threads", "1",
                                   "--verify-top", "0", "--table", "shipped")
    assert code == 0, stderr[-3000:]
    best = json.loads((out / "search" / "best.json").read_text())
    assert (best["space"], best["trials"]) == ("fmnist28", 5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arch"] == best["arch"] and summary["train"]["train_images"] == 2000
    for profile in ("export", "export_mobile"):
        export = summary[profile]
        assert Path(export["path"]).is_file() and export["arch"] == best["arch"]
        assert export["max_abs_diff"] <= 1e-4  # the ONNX file agrees with PyTorch
        assert 0 <= export["test_accuracy"] <= 1 and export["test_images"] == 10000
        # INT8 kept (within a point of fp32) or dropped with the reason recorded
        int8 = export["int8"]
        assert (int8 is not None and Path(int8["path"]).is_file()
                and int8["accuracy_drop"] <= 0.01) or export["int8_error"]
        assert set(export["timing"]) >= {"threads", "fp32"}
    assert Path(summary["export_mobile"]["ort"]["path"]).is_file()
    assert (out / "search" / "report.html").is_file() and (out / "model.pt").is_file()
    assert f"report         {out / 'search' / 'report.html'}" in stdout.splitlines()
