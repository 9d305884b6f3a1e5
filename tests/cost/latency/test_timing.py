"""The one timing loop and the one timing result, on a fake onnxruntime backend: sessions
whose every call advances a fake nanosecond clock by a scripted amount, so every number
below is exact (no real timings)."""

from types import SimpleNamespace

import numpy as np
import pytest

from mobile_nas.cost.latency import runner
from mobile_nas.cost.latency.runner import (
    RunnerError,
    TimingResult,
    time_interleaved,
    timing_result,
)

MS = 1_000_000  # nanoseconds


class FakeClock:
    """A nanosecond counter that only fake sessions advance."""

    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


class FakeSession:
    """Call ``i`` of ``run`` takes ``durations_ms[i]`` on ``clock``; calls are logged by name."""

    def __init__(self, name: str, durations_ms: list[float], clock: FakeClock,
                 log: list[str]) -> None:
        self.name, self.durations, self.clock, self.log = name, list(durations_ms), clock, log

    def get_inputs(self):
        return [SimpleNamespace(name="x", shape=["batch", 3, 2, 2], type="tensor(float)")]

    def run(self, outputs, feed):
        assert outputs is None and set(feed) == {"x"}
        assert feed["x"].shape == (1, 3, 2, 2) and feed["x"].dtype == np.float32
        self.clock.ns += round(self.durations.pop(0) * MS)
        self.log.append(self.name)
        return [np.zeros((1, 10), np.float32)]


def test_loop_warms_up_then_interleaves_rounds_and_times_exactly():
    clock, log, rounds_done = FakeClock(), [], []
    warmup = [1000.0, 1000.0]  # never timed
    sessions = {
        "a": FakeSession("a", warmup + [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], clock, log),
        "b": FakeSession("b", warmup + [0.5] * 8, clock, log),
        "c": FakeSession("c", warmup + [10.0, 20.0] * 4, clock, log),
    }
    times = time_interleaved(sessions, warmup=2, rounds=4, runs_per_round=2, timer=clock,
                             on_round=rounds_done.append)
    # warm-up in insertion order, then each round visits every model once, in the order
    # of the seeded shuffle, for runs_per_round consecutive runs
    assert log[:6] == ["a", "a", "b", "b", "c", "c"]
    rounds = [log[6 + 6 * r:12 + 6 * r] for r in range(4)]
    assert [r[::2] for r in rounds] == [["c", "a", "b"], ["b", "a", "c"], ["c", "b", "a"],
                                        ["b", "a", "c"]]
    assert all(r[::2] == r[1::2] for r in rounds)
    assert len(log) == 6 + 4 * 6 and rounds_done == [0, 1, 2, 3]
    assert times == {"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], "b": [0.5] * 8,
                     "c": [10.0, 20.0] * 4}


def test_the_seed_changes_the_order_not_the_times():
    def run(seed):
        clock, log = FakeClock(), []
        sessions = {n: FakeSession(n, [float(i + 1)] * 3, clock, log) for i, n in
                    enumerate("abcd")}
        return log, time_interleaved(sessions, warmup=0, rounds=3, runs_per_round=1,
                                     seed=seed, timer=clock)

    (log0, t0), (log1, t1) = run(0), run(1)
    assert t0 == t1 == {"a": [1.0] * 3, "b": [2.0] * 3, "c": [3.0] * 3, "d": [4.0] * 3}
    assert log0 != log1 and sorted(log0) == sorted(log1)


def test_timing_result_exact_statistics():
    times = [float(v) for v in np.random.default_rng(3).permutation(np.arange(1, 102))]
    r = timing_result(times, clock="cpu", threads=1)
    assert r == TimingResult(median_ms=51.0, iqr_ms=50.0, min_ms=1.0, p90_ms=91.0,
                             p99_ms=100.0, mean_ms=51.0, std_ms=float(np.sqrt(858.5)), n=101,
                             clock="cpu", threads=1)
    with pytest.raises(AttributeError):
        r.median_ms = 0.0  # frozen
    assert r.summary() == {"median_ms": 51.0, "iqr_ms": 50.0, "n": 101, "min_ms": 1.0}
    assert r.to_json()["p99_ms"] == 100.0
    # linear interpolation between order statistics
    four = timing_result([4.0, 1.0, 3.0, 2.0])
    assert (four.median_ms, four.iqr_ms, four.min_ms) == (2.5, 1.5, 1.0)
    one = timing_result([7.0])
    assert (one.median_ms, one.iqr_ms, one.p99_ms, one.std_ms, one.n) == (7.0, 0.0, 7.0, 0.0, 1)
    with pytest.raises(RunnerError, match="no timed runs"):
        timing_result([])


def test_bench_record_is_the_timing_result():
    times = [float(v) for v in range(1, 102)]
    r = timing_result(times, threads=2)
    assert r.percentiles() == {"p50_ms": r.median_ms, "p90_ms": r.p90_ms, "p99_ms": r.p99_ms,
                               "mean_ms": r.mean_ms, "std_ms": r.std_ms, "min_ms": r.min_ms,
                               "runs": r.n}
    assert list(r.percentiles()) == ["p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms",
                                     "min_ms", "runs"]


def test_time_models_on_the_fake_backend(monkeypatch, tmp_path):
    """``export``'s fp32/INT8 timing: the one session factory, the one loop (wall clock),
    the one result, in its historical dict."""
    from mobile_nas.cost.latency import measure
    from mobile_nas.export import deploy

    clock, log, opened = FakeClock(), [], []
    scripts = {  # 10 warm-up runs, then 20 timed ones (runs=20: 4 rounds of 5)
        "fp32.onnx": [99.0] * 10 + [4.0] * 10 + [6.0] * 9 + [16.0],
        "int8.onnx": [99.0] * 10 + [1.0] * 10 + [2.0] * 9 + [8.0],
    }

    def fake_session(path, *, threads=1, config=None):
        opened.append((path.name, threads, config))
        return FakeSession(path.name, scripts[path.name], clock, log)

    def fake_clock(name):
        assert name == "wall"
        return clock

    monkeypatch.setattr(measure, "load_session", fake_session)
    monkeypatch.setattr(runner, "_clock", fake_clock)
    timings = deploy.time_models({"fp32": tmp_path / "fp32.onnx",
                                  "int8": tmp_path / "int8.onnx"}, runs=20, threads=1)
    assert opened == [("fp32.onnx", 1, None), ("int8.onnx", 1, None)]
    assert timings["fp32"] == timing_result([4.0] * 10 + [6.0] * 9 + [16.0])
    result = deploy.export_timing(timings, threads=1)
    assert list(result) == ["threads", "fp32", "int8", "speedup"]
    assert result == {
        "threads": 1,
        "fp32": {"p50_ms": 5.0, "p90_ms": 6.0, "mean_ms": 5.5, "runs": 20},
        "int8": {"p50_ms": 1.5, "p90_ms": 2.0, "mean_ms": 1.8, "runs": 20},
        "speedup": 5.0 / 1.5,
    }
    # 4 rounds, each visiting both models (seeded order) for 5 consecutive runs
    timed = log[20:]
    assert all(len(set(timed[i:i + 5])) == 1 for i in range(0, 40, 5))
    assert [timed[i].split(".")[0] for i in range(0, 40, 5)] == [
        "fp32", "int8", "fp32", "int8", "fp32", "int8", "int8", "fp32"]


def test_load_session_is_the_one_session_opener(tmp_path):
    import torch

    from mobile_nas.cost.latency.measure import load_session
    from mobile_nas.torch_onnx import torch_to_onnx

    path = tmp_path / "m.onnx"
    path.write_bytes(torch_to_onnx(torch.nn.Conv2d(1, 2, 3), torch.zeros(1, 1, 5, 5)))
    sess = load_session(path, threads=2, config={"session.intra_op.allow_spinning": "0"})
    opts = sess.get_session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (2, 1)
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert sess.get_providers() == ["CPUExecutionProvider"]
    out = sess.run(None, {"input": np.zeros((1, 1, 5, 5), np.float32)})[0]
    assert out.shape == (1, 2, 3, 3)
    optimized = tmp_path / "optimized.onnx"
    load_session(path, optimized_model_path=optimized)
    assert optimized.is_file()
