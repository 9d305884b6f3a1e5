"""benchmarks/latency_process_retest.py: the within/across-process split on crafted ratios."""

import numpy as np
import pytest

from tests.benchmarks import load_script


def _module():
    return load_script("latency_process_retest")


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


def test_run_noise_alone_stays_within_and_process_offsets_show_across():
    """2% run-to-run noise: across-process deviation no larger than within; add 4% per
    network and process: across is more than twice within."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(1, 2, 30)

    def processes(offset_sd: float) -> list[dict]:
        out = []
        for _ in range(6):
            offset = 1 + rng.normal(0, offset_sd, 30)
            out.append({"ratios": [list(truth * offset * (1 + rng.normal(0, 0.02, 30)))
                                   for _ in range(3)]})
        return out

    quiet = _module().analyse(processes(0.0))
    assert 0.5 < quiet["within_pct"] < 3.0 and quiet["across_pct"] < quiet["within_pct"]
    moved = _module().analyse(processes(0.04))
    assert moved["across_pct"] > 2 * moved["within_pct"]
