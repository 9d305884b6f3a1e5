import math

import pytest

from mobile_nas.search.rewards import Reward, RewardError, Target, make_reward

# Expected values are worked by hand from the published formulas, not recomputed from the
# code's expression: 2^0.07 = exp(0.07 ln 2) = exp(0.048520) = 1.049717, so twice the target
# latency costs a factor 1/1.049717 = 0.952638 (MnasNet: "a model 2x slower needs about 5%
# more accuracy"), and 8^-0.07 = exp(-0.145561) = 0.864537.


def test_soft_reward_is_mnasnet_formula():
    r = make_reward(latency_target_ms=10.0, kind="soft")
    assert r(0.9, {"latency_ms": 20.0}) == pytest.approx(0.857374, abs=1e-6)  # 0.9 * 0.952638
    assert r(0.9, {"latency_ms": 5.0}) == pytest.approx(0.944745, abs=1e-6)  # 0.9 * 1.049717
    assert r(0.9, {"latency_ms": 10.0}) == pytest.approx(0.9, abs=1e-12)  # at the target


def test_hard_reward_only_penalizes_past_target():
    r = make_reward(latency_target_ms=10.0, kind="hard")
    assert r(0.8, {"latency_ms": 4.0}) == pytest.approx(0.8, abs=1e-12)  # no bonus under T
    assert r(0.8, {"latency_ms": 9.5}) == pytest.approx(0.8, abs=1e-12)  # just under T
    assert r(0.8, {"latency_ms": 10.0}) == pytest.approx(0.8, abs=1e-12)
    assert r(0.8, {"latency_ms": 12.5}) == pytest.approx(0.64, abs=1e-12)  # 0.8 / 1.25
    assert r(0.8, {"latency_ms": 20.0}) == pytest.approx(0.4, abs=1e-12)  # 0.8 / 2


def test_absolute_reward_is_tunas_formula():
    r = make_reward(latency_target_ms=10.0, kind="absolute", beta=-0.5)
    assert r(0.8, {"latency_ms": 10.0}) == pytest.approx(0.8, abs=1e-12)
    assert r(0.8, {"latency_ms": 15.0}) == pytest.approx(0.55, abs=1e-12)  # 0.8 - 0.5 * 0.5
    assert r(0.8, {"latency_ms": 5.0}) == pytest.approx(0.55, abs=1e-12)  # both sides
    default = make_reward(latency_target_ms=10.0, kind="absolute")  # beta -0.07
    assert default(0.8, {"latency_ms": 20.0}) == pytest.approx(0.73, abs=1e-12)


def test_latency_and_macs_targets_together():
    r = make_reward(latency_target_ms=10.0, macs_target=1e6, kind="soft")
    m = {"latency_ms": 20.0, "macs": 4e6}
    assert r(0.5, m) == pytest.approx(0.432269, abs=1e-6)  # 0.5 * (2 * 4)^-0.07
    assert not r.feasible(m)
    assert not r.feasible({"latency_ms": 5.0, "macs": 2e6})
    assert r.feasible({"latency_ms": 10.0, "macs": 1e6})
    a = make_reward(latency_target_ms=10.0, macs_target=1e6, kind="absolute")
    assert a(0.5, m) == pytest.approx(0.22, abs=1e-12)  # 0.5 - 0.07 * 1 - 0.07 * 3
    h = make_reward(latency_target_ms=10.0, macs_target=1e6, kind="hard")
    assert h(0.6, {"latency_ms": 5.0, "macs": 3e6}) == pytest.approx(0.2, abs=1e-12)  # / 3
    assert h(0.6, m) == pytest.approx(0.075, abs=1e-12)  # 0.6 / 2 / 4


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
