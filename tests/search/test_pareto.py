import pytest

from mobile_nas.search.outputs import best_record, pareto_records
from mobile_nas.search.pareto import hypervolume, hypervolume_2d, non_dominated


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


def test_hypervolume_2d_of_a_crafted_front_by_hand():
    # (accuracy up, latency down), reference (0.5, 10): a staircase of three rectangles
    # A=(0.6, 2): 0.1*8 = 0.8; B=(0.8, 5) adds (0.8-0.6)*(10-5) = 1.0; C=(0.9, 8) adds
    # (0.9-0.8)*(10-8) = 0.2. D is dominated by B, E is beyond the reference latency, F
    # below the reference accuracy, G duplicates A: none adds anything.
    pts = [(0.6, 2.0), (0.8, 5.0), (0.9, 8.0), (0.7, 6.0), (0.95, 12.0), (0.4, 1.0),
           (0.6, 2.0)]
    assert hypervolume(pts, (True, False), (0.5, 10.0)) == pytest.approx(2.0)
    assert hypervolume(pts[:1], (True, False), (0.5, 10.0)) == pytest.approx(0.8)
    assert hypervolume([], (True, False), (0.5, 10.0)) == 0.0
    assert hypervolume([(0.4, 1.0)], (True, False), (0.5, 10.0)) == 0.0
    # the same front as losses only (error = 1 - accuracy, minimized)
    losses = [(1 - a, lat) for a, lat in pts]
    assert hypervolume(losses, (False, False), (0.5, 10.0)) == pytest.approx(2.0)


def test_hypervolume_3d_of_a_crafted_front_by_hand():
    # (accuracy up, latency down, MACs down), reference (0, 4, 4). Boxes [0, acc] x [lat, 4]
    # x [macs, 4]: P=(1, 1, 3): 1*3*1 = 3; Q=(2, 3, 1): 2*1*3 = 6; overlap of P and Q:
    # [0, 1] x [3, 4] x [3, 4] = 1; so P+Q = 8. R=(3, 2, 2): 3*2*2 = 12; R∩P: [0,1]x[2,4]x
    # [3,4] = 2; R∩Q: [0,2]x[3,4]x[2,4] = 4; P∩Q∩R = [0,1]x[3,4]x[3,4] = 1.
    # Union = 3 + 6 + 12 - 1 - 2 - 4 + 1 = 15.
    pts = [(1.0, 1.0, 3.0), (2.0, 3.0, 1.0), (3.0, 2.0, 2.0)]
    maxi = (True, False, False)
    ref = (0.0, 4.0, 4.0)
    assert hypervolume(pts, maxi, ref) == pytest.approx(15.0)
    assert hypervolume(pts[:2], maxi, ref) == pytest.approx(8.0)
    # a dominated point and a point on the reference's MACs face add nothing
    assert hypervolume(pts + [(0.5, 3.0, 3.0), (5.0, 0.5, 4.0)], maxi, ref) == \
        pytest.approx(15.0)
    # one point: its box
    assert hypervolume([(2.0, 1.0, 1.0)], maxi, ref) == pytest.approx(2 * 3 * 3)
