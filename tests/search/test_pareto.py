import pytest

from mobile_nas.search.outputs import best_record, pareto_records
from mobile_nas.search.pareto import hypervolume_2d, non_dominated


def test_non_dominated_mixed_directions():
    pts = [(0.9, 10.0), (0.8, 5.0), (0.85, 12.0), (0.7, 5.0), (0.9, 10.0)]
    assert non_dominated(pts, (True, False)) == [0, 1, 4]


def test_hypervolume_of_two_points():
    # rectangles: (0.5-0) * (10-2) + (0.8-0.5) * (10-6)
    hv = hypervolume_2d([0.5, 0.8], [2.0, 6.0], ref_latency_ms=10.0)
    assert hv == pytest.approx(0.5 * 8 + 0.3 * 4)
    assert hypervolume_2d([0.9], [11.0], ref_latency_ms=10.0) == 0.0
    assert hypervolume_2d([0.5, 0.4, 0.8], [2.0, 3.0, 6.0], ref_latency_ms=10.0) == \
        pytest.approx(hv)


def _rec(n, acc, lat, feasible, reward):
    return {"number": n, "arch": f"a{n}", "accuracy": acc, "latency_ms": lat, "macs": 1,
            "params": 1, "reward": reward, "feasible": feasible}


def test_best_prefers_feasible_then_reward():
    recs = [_rec(0, 0.9, 20, False, 0.95), _rec(1, 0.8, 5, True, 0.81),
            _rec(2, 0.82, 6, True, 0.83)]
    assert best_record(recs)["number"] == 2
    assert best_record(recs[:1])["feasible"] is False
    assert best_record([]) is None
    assert [r["number"] for r in pareto_records(recs)] == [1, 2, 0]
