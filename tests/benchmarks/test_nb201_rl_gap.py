"""benchmarks/nb201_rl_gap.py: the per-query metrics on crafted traces (distance to the
incumbent, top-k share, re-queries) and the controller probe on controllers whose
distribution is known."""

import math

import numpy as np
import pytest

from tests.benchmarks import load_script

G = load_script("nb201_rl_gap")

# five crafted cells of a 3-edge space: ops, accuracy, feasibility
OPS = np.array([[0, 0, 0], [0, 0, 1], [1, 1, 1], [0, 1, 1], [2, 2, 2]])
ACC = np.array([0.50, 0.60, 0.90, 0.70, 0.99])
FEASIBLE = np.array([False, True, True, True, False])


def test_distance_is_to_the_best_feasible_cell_queried_before():
    # queries: 0 (infeasible: no incumbent yet), 1 (first feasible), 2, 3, 4, 1
    trace = [0, 1, 2, 3, 4, 1]
    assert G.incumbents(trace, ACC, FEASIBLE).tolist() == [-1, -1, 1, 2, 2, 2]
    dist = G.incumbent_distances(trace, OPS, ACC, FEASIBLE)
    assert np.isnan(dist[:2]).all()
    # 2 vs 1: edges 0 and 1 differ; 3 vs 2: edge 0; 4 vs 2: all three (the more accurate
    # cell 4 is infeasible, so it never becomes the incumbent); 1 vs 2: edges 0 and 1
    assert dist[2:].tolist() == [2.0, 1.0, 3.0, 2.0]


def test_a_tie_keeps_the_earlier_incumbent():
    acc = np.array([0.5, 0.8, 0.8])
    assert G.incumbents([1, 2, 0], acc, np.ones(3, bool)).tolist() == [-1, 1, 1]


def test_top_cells_rank_only_feasible_cells_and_keep_ties():
    acc = np.array([0.99, 0.9, 0.8, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    feasible = np.array([False] + [True] * 10)
    top10 = G.top_cells(acc, feasible, 0.10)  # 1 of 10 feasible cells
    assert np.flatnonzero(top10).tolist() == [1]
    top20 = G.top_cells(acc, feasible, 0.20)  # 2 cells, but the second (0.8) is tied: 3
    assert np.flatnonzero(top20).tolist() == [1, 2, 3]
    top30 = G.top_cells(acc, feasible, 0.30)  # 3 cells (0.3 x 10 is not rounded up to 4)
    assert np.flatnonzero(top30).tolist() == [1, 2, 3]
    top35 = G.top_cells(acc, feasible, 0.35)  # 3.5: 4 cells
    assert np.flatnonzero(top35).tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError):
        G.top_cells(acc, feasible, 0.0)


def test_top_share_counts_repeats_and_stops_at_the_budget():
    mask = np.array([False, True, False, True, False])
    trace = [1, 1, 0, 3, 2, 3]
    assert G.top_share(trace, mask, 2) == 1.0
    assert G.top_share(trace, mask, 4) == 0.75
    assert G.top_share(trace, mask, 6) == pytest.approx(4 / 6)
    assert G.top_share(trace, mask, 100) == pytest.approx(4 / 6)  # budget past the run


def test_requeries_count_only_cells_queried_earlier_in_the_budget():
    trace = [3, 1, 3, 3, 2, 1]
    assert [G.requeries(trace, b) for b in (1, 2, 3, 4, 5, 6)] == [0, 0, 1, 2, 2, 3]


def test_probe_reads_the_controllers_exact_distribution():
    import torch

    from mobile_nas.search.strategy import make_strategy
    from mobile_nas.space import get_space

    space = get_space("nb201")
    rl = make_strategy("rl", space=space, seed=0)
    probe = G.PolicyProbe(rl)
    entropy, mass, distance = probe.read()  # a fresh controller: uniform, 5 ops per edge
    assert entropy == pytest.approx(math.log(5), abs=1e-6) and mass == 0.0
    assert math.isnan(distance)  # no incumbent to measure from
    assert probe.read((0, 1, 2, 3, 4, 0))[2] == pytest.approx(6 * 4 / 5)
    for arch in (space.sample(np.random.default_rng(k)) for k in range(3)):
        rl.history[arch.indices()] = 0.5  # told (the policy is unchanged without update)
    _, mass, _ = probe.read()
    assert mass == pytest.approx(len(rl.history) / 5 ** 6, rel=1e-6)
    with torch.no_grad():  # op 0 favoured on every edge (the heads' weights are zero)
        for head in rl.policy.heads:
            head.bias[0] = 50.0  # squashed to tanh_c = 2.5 by the policy
    rl.updates += 1  # what the probe takes as "the policy changed"
    p0 = math.exp(2.5) / (math.exp(2.5) + 4)
    q = 1 / (math.exp(2.5) + 4)
    entropy, _, distance = probe.read((0, 0, 0, 0, 0, 1))
    assert entropy == pytest.approx(-(p0 * math.log(p0) + 4 * q * math.log(q)), rel=1e-5)
    assert distance == pytest.approx(5 * (1 - p0) + (1 - q), rel=1e-5)
    rl.history = {(0,) * 6: 0.9, (1,) * 6: 0.1}
    assert probe.read()[1] == pytest.approx(p0 ** 6 + q ** 6, rel=1e-5)


def test_the_probed_log_follows_the_same_incumbent_as_the_metrics():
    trace = [0, 1, 2, 3, 4, 1]
    log = G.ProbedLog({f"c{i}": i for i in range(5)}, OPS, ACC, FEASIBLE)
    seen = []
    for i in trace:
        seen.append(log.incumbent)  # the incumbent before the query
        log.on_trial({"arch": f"c{i}"})
    assert seen == G.incumbents(trace, ACC, FEASIBLE).tolist()
    assert log.indices == trace and log.repeats == [5]
