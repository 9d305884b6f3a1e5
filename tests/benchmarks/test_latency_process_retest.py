"""benchmarks/latency_process_retest.py: the within/across-process split on crafted ratios."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location(
        "latency_process_retest", ROOT / "benchmarks" / "latency_process_retest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_per_process_offset_shows_across_processes_only():
    """Every run of a process repeats exactly (within 0%); each process moves network 0 up
    and network 1 down by its own amount (across > 0) and all networks by a common shift."""
    truth = np.array([1.0, 2.0, 1.5, 1.2])
    processes = []
    for offset, shift in [(0.04, 0.0), (-0.04, 0.02), (0.02, -0.01), (-0.02, 0.0)]:
        ratios = truth * (1 + shift) * (1 + np.array([offset, -offset, 0.0, 0.0]))
        processes.append({"ratios": [list(ratios)] * 3})
    a = _module().analyse(processes)
    assert a["within_pct"] == pytest.approx(0.0, abs=1e-9)
    assert a["across_pct"] > 1.0
    assert a["process_shift_pct"][1] > a["process_shift_pct"][0]
    assert a["networks"] == 4


def test_run_to_run_noise_inside_processes_shows_within():
    rng = np.random.default_rng(0)
    truth = rng.uniform(1, 2, 30)
    processes = [{"ratios": [list(truth * (1 + rng.normal(0, 0.02, 30))) for _ in range(3)]}
                 for _ in range(6)]
    a = _module().analyse(processes)
    assert 0.5 < a["within_pct"] < 3.0 and a["halves_pct"] < a["within_pct"]
