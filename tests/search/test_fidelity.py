"""Rank fidelity: Kendall tau, its bootstrap interval, top-k overlap and the seed ceiling."""

import pytest

from mobile_nas.search.fidelity import FidelityError, rank_fidelity, seed_noise


def test_tau_of_a_crafted_order():
    # one swapped pair among 4 items: 5 concordant, 1 discordant pair -> tau = 4/6
    fid = rank_fidelity([0.80, 0.82, 0.84, 0.86], [0.1, 0.2, 0.4, 0.3], top_k=2)
    assert fid.kendall_tau == pytest.approx(4 / 6)
    assert fid.n == 4
    assert fid.top_k_overlap == 1.0  # the swap is inside the top 2
    assert fid.tau_low <= fid.kendall_tau <= fid.tau_high
    # item 1 jumps to the top: pairs (1,2) and (1,3) discordant -> tau = (4 - 2) / 6
    fid = rank_fidelity([0.80, 0.82, 0.84, 0.86], [0.1, 0.4, 0.2, 0.3], top_k=2)
    assert fid.kendall_tau == pytest.approx(2 / 6)
    assert fid.top_k_overlap == 0.5  # true top-2 {3, 2}, scored top-2 {1, 3}


def test_perfect_and_reversed_orders():
    truth = [0.1, 0.5, 0.3, 0.9, 0.7, 0.2]
    assert rank_fidelity(truth, [10 * t for t in truth]).kendall_tau == pytest.approx(1.0)
    reversed_fid = rank_fidelity(truth, [-t for t in truth], top_k=3)
    assert reversed_fid.kendall_tau == pytest.approx(-1.0)
    assert reversed_fid.top_k_overlap == 0.0
    assert reversed_fid.spearman_rho == pytest.approx(-1.0)


def test_ties_use_tau_b():
    # scores tie on the first two: tau-b = (concordant - discordant) / sqrt((n0-n1)(n0-n2))
    fid = rank_fidelity([1, 2, 3], [1, 1, 2])
    assert fid.kendall_tau == pytest.approx(2 / (3 * 2) ** 0.5)


def test_bad_inputs_are_refused():
    with pytest.raises(FidelityError, match="equally long"):
        rank_fidelity([1, 2, 3], [1, 2])
    with pytest.raises(FidelityError, match="at least 3"):
        rank_fidelity([1, 2], [1, 2])
    with pytest.raises(FidelityError, match="finite"):
        rank_fidelity([1, 2, float("nan")], [1, 2, 3])


def test_seed_noise():
    noise = seed_noise([0.80, 0.85, 0.90], [0.81, 0.84, 0.92])
    assert noise.mean_abs_diff == pytest.approx((0.01 + 0.01 + 0.02) / 3)
    assert noise.max_abs_diff == pytest.approx(0.02)
    assert noise.fidelity.kendall_tau == pytest.approx(1.0)


def test_matched_fidelity_counts_only_pairs_of_similar_cost():
    from mobile_nas.search.fidelity import matched_fidelity

    # costs 1.0, 1.1 | 2.0, 2.2 | 5.0: with ratio 1.25 only pairs (0,1) and (2,3) count
    truth = [0.80, 0.85, 0.86, 0.90, 0.95]
    scores = [0.2, 0.1, 0.3, 0.4, 0.0]  # (0,1) discordant, (2,3) concordant
    cost = [1.0, 1.1, 2.0, 2.2, 5.0]
    fid = matched_fidelity(truth, scores, cost, ratio=1.25)
    assert fid.pairs == 2 and fid.tau == pytest.approx(0.0)
    # the cost alone orders (0,1) and (2,3) right: tau 1 within matched pairs
    assert matched_fidelity(truth, cost, cost, ratio=1.25).tau == pytest.approx(1.0)
    # a wide ratio brings every pair in: 10 pairs
    assert matched_fidelity(truth, scores, cost, ratio=10).pairs == 10
    with pytest.raises(FidelityError, match="no two architectures"):
        matched_fidelity(truth, scores, [1, 2, 4, 8, 16], ratio=1.25)


def test_tau_difference_is_paired_and_exact_on_crafted_orders():
    from mobile_nas.search.fidelity import tau_difference

    truth = list(range(10))
    perfect, reversed_ = list(range(10)), list(range(10))[::-1]
    d = tau_difference(truth, perfect, reversed_, bootstrap=200)
    assert d.difference == pytest.approx(2.0)
    assert d.low == pytest.approx(2.0) and d.clearly_above  # every resample: 1 - (-1)
    same = tau_difference(truth, perfect, perfect, bootstrap=200)
    assert same.difference == 0 and same.low == 0 and not same.clearly_above


def test_tau_difference_refuses_unequal_lists():
    from mobile_nas.search.fidelity import FidelityError, tau_difference

    with pytest.raises(FidelityError, match="equally long"):
        tau_difference([1, 2, 3], [1, 2, 3], [1, 2])
