"""``mobile-nas demo`` end to end (slow: it trains a supernet and a network)."""

import json

import pytest

from mobile_nas.train.data import DEBIAN_FASHION_MNIST


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs dataset-fashion-mnist")
def test_demo_produces_report_onnx_files_and_summary(run_cli, tmp_path):
    out = tmp_path / "demo"
    args = ("demo", "--out", str(out), "--trials", "6", "--epochs", "1",
            "--train-subset", "3000", "--threads", "1")
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
