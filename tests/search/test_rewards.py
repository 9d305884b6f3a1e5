import math

import pytest

from mobile_nas.search.rewards import Reward, RewardError, Target, make_reward


def test_soft_reward_is_mnasnet_formula():
    r = make_reward(latency_target_ms=10.0, kind="soft")
    assert r(0.9, {"latency_ms": 20.0}) == pytest.approx(0.9 * 2.0 ** -0.07)
    assert r(0.9, {"latency_ms": 5.0}) == pytest.approx(0.9 * 0.5 ** -0.07)
    assert r(0.9, {"latency_ms": 5.0}) > 0.9 > r(0.9, {"latency_ms": 20.0})


def test_hard_reward_only_penalizes_past_target():
    r = make_reward(latency_target_ms=10.0, kind="hard")
    assert r(0.8, {"latency_ms": 4.0}) == pytest.approx(0.8)
    assert r(0.8, {"latency_ms": 20.0}) == pytest.approx(0.4)


def test_absolute_reward_is_tunas_formula():
    r = make_reward(latency_target_ms=10.0, kind="absolute", beta=-0.5)
    assert r(0.8, {"latency_ms": 10.0}) == pytest.approx(0.8)
    assert r(0.8, {"latency_ms": 15.0}) == pytest.approx(0.8 - 0.25)
    assert r(0.8, {"latency_ms": 5.0}) == pytest.approx(0.8 - 0.25)


def test_latency_and_macs_targets_together():
    r = make_reward(latency_target_ms=10.0, macs_target=1e6, kind="soft")
    m = {"latency_ms": 20.0, "macs": 4e6}
    assert r(0.5, m) == pytest.approx(0.5 * 2 ** -0.07 * 4 ** -0.07)
    assert not r.feasible(m)
    assert not r.feasible({"latency_ms": 5.0, "macs": 2e6})
    assert r.feasible({"latency_ms": 10.0, "macs": 1e6})
    a = make_reward(latency_target_ms=10.0, macs_target=1e6, kind="absolute")
    assert a(0.5, m) == pytest.approx(0.5 - 0.07 * 1 - 0.07 * 3)


@pytest.mark.parametrize("value", [0, -1.0, math.inf, math.nan])
def test_bad_target_names_the_value(value):
    with pytest.raises(RewardError, match="latency_ms target"):
        Target("latency_ms", value)


def test_bad_reward_definitions():
    with pytest.raises(RewardError, match="unknown reward 'linear'"):
        make_reward(latency_target_ms=1.0, kind="linear")
    with pytest.raises(RewardError, match="at least one target"):
        make_reward()
    with pytest.raises(RewardError, match="beta must be negative"):
        make_reward(latency_target_ms=1.0, kind="absolute", beta=0.1)
    with pytest.raises(RewardError, match="unknown target metric 'flops'"):
        Reward((Target("flops", 1.0),))


def test_beyond_compares_each_metric_with_its_target_plus_the_margin():
    r = make_reward(latency_target_ms=2.0, macs_target=1e6)
    assert not r.beyond({"latency_ms": 2.2, "macs": 1e6}, 0.1)  # exactly 10% past: kept
    assert r.beyond({"latency_ms": 2.21, "macs": 1e6}, 0.1)
    assert r.beyond({"latency_ms": 1.0, "macs": 1.3e6}, 0.25)
    assert not r.beyond({"latency_ms": 1.0, "macs": 1.25e6}, 0.25)
    assert r.beyond({"latency_ms": 2.01, "macs": 0.0}, 0.0)
