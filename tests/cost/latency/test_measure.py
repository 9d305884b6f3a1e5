import dataclasses

import pytest

from mobile_nas.cost.latency import MeasureError
from mobile_nas.cost.latency.export import export_layer_onnx
from mobile_nas.cost.latency.measure import (
    AUTO_ROUNDS,
    auto_rounds,
    measure_arch_ms,
    measure_onnx_ms,
)
from mobile_nas.cost.latency.runner import TimingResult


def test_measure_onnx_file(tmp_path, fmnist, small_arch):
    path = tmp_path / "layer.onnx"
    path.write_bytes(export_layer_onnx(fmnist.layers(small_arch)[1]))
    t = measure_onnx_ms(path, threads=1, warmup=2, runs=20)
    assert isinstance(t, TimingResult) and t.n == 20 and t.threads == 1
    assert 0 < t.median_ms <= t.p90_ms <= t.p99_ms
    assert t.mean_ms > 0 and t.std_ms >= 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.median_ms = 1.0  # type: ignore[misc]


def test_measure_arch(small_arch):
    t = measure_arch_ms(small_arch, warmup=1, runs=10, clock="cpu")
    assert t.n == 10 and t.median_ms > 0 and t.clock == "cpu"


def test_not_a_model(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not onnx")
    with pytest.raises(MeasureError, match="not a loadable ONNX model"):
        measure_onnx_ms(bad)
    with pytest.raises(MeasureError, match="not found"):
        measure_onnx_ms(tmp_path / "missing.onnx")


def test_bad_settings(tmp_path, fmnist, small_arch):
    path = tmp_path / "layer.onnx"
    path.write_bytes(export_layer_onnx(fmnist.layers(small_arch)[0]))
    with pytest.raises(MeasureError, match="provider"):
        measure_onnx_ms(path, provider="NoSuchProvider")
    with pytest.raises(MeasureError, match="threads=1"):
        measure_onnx_ms(path, threads=2, clock="cpu")


def test_auto_rounds_fill_the_budget_within_bounds():
    # 51 networks of 0.15 ms, 5 runs each per round: 38 ms a round -> the cap
    assert auto_rounds(38.0, 3) == AUTO_ROUNDS[1]
    # 500 ms a round, 3 repeats, 60 s: 40 rounds
    assert auto_rounds(500.0, 3, budget_s=60.0) == 40
    # large networks never get fewer than the floor
    assert auto_rounds(7000.0, 3) == AUTO_ROUNDS[0]
    assert auto_rounds(0.0, 3) == AUTO_ROUNDS[1]
