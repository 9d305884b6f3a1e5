"""benchmarks/latency_prediction.py: every figure recomputed from the per-network rows."""

import pytest

from tests.benchmarks import load_script

B = load_script("latency_prediction")


def _run(errors_pct, noise_mape):
    """A check whose reference is 'ref' and whose networks' predicted ratios are off by
    ``errors_pct`` (measured ratios 1.0, 1.03, 1.06, ...)."""
    rows = [{"name": "ref", "predicted_ratio": 1.0, "measured_ratio": 1.0,
             "predicted_ms": 0.1, "measured_ms": 0.1}]
    for i, e in enumerate(errors_pct):
        m = 1.0 + 0.03 * (i + 1)
        rows.append({"name": f"random{i}", "predicted_ratio": m * (1 + e / 100),
                     "measured_ratio": m, "predicted_ms": 0.1 * m * (1 + e / 100),
                     "measured_ms": 0.1 * m})
    return {"run": 0, "reference": "ref", "noise_mape": noise_mape, "rows": rows}


def test_a_run_passes_only_when_every_share_meets_its_bar():
    good = _run([1.0, -2.0, 3.0, 0.5, -1.0], noise_mape=0.5)
    five_off = _run([1.0, -2.0, 6.0, 0.5, -7.0], noise_mape=0.5)  # 60% within ±5%
    result = B.recompute({"spaces": {"a": {"runs": [good]}, "b": {"runs": [good, five_off]}}})
    a, b = result["spaces"]["a"], result["spaces"]["b"]
    assert a["meets_goal"] and not b["meets_goal"]
    assert a["runs"][0]["ratio_within_5"] == 1.0
    assert b["runs"][1]["ratio_within_5"] == pytest.approx(0.6)
    # its two -7%/+6% errors also swap 4 of its 9 close pairs
    assert b["runs"][1]["pair_order"]["correct"] == 5
    assert b["runs"][1]["passes"] == {"ratio_within_10": True, "ratio_within_5": False,
                                      "pair_order": False, "all": False}


def test_the_pair_order_counts_pairs_apart_by_more_than_twice_the_noise():
    # measured 1.03, 1.06, 1.09: pairs 2.9%, 5.8%, 2.8% apart; predictions swap the first two
    run = _run([4.0, -2.0, 0.0], noise_mape=1.0)
    po = B.recompute({"spaces": {"a": {"runs": [run]}}})["spaces"]["a"]["runs"][0]["pair_order"]
    assert po["floor_pct"] == 2.0 and (po["pairs"], po["correct"]) == (3, 2)
    run = _run([4.0, -2.0, 0.0], noise_mape=1.5)  # floor 3%: only the 5.8% pair counts
    po = B.recompute({"spaces": {"a": {"runs": [run]}}})["spaces"]["a"]["runs"][0]["pair_order"]
    assert (po["pairs"], po["correct"]) == (1, 1)
