"""benchmarks/nb201_rl.py: the registered protocol's guard (phases, settings, seeds), the
plans, the frozen-record check and the decision rule on crafted cases."""

import json

import pytest

from tests.benchmarks import load_script

RL = load_script("nb201_rl")
from mobile_nas.report import protocol as prot  # noqa: E402
from nb201 import protocol as P  # noqa: E402
from nb201.store import RunStore  # noqa: E402

DEVICES = ["1080ti_1", "essential_ph_1", "eyeriss", "fpga", "gold_6226", "pixel2", "pixel3",
           "raspi4", "samsung_a50", "samsung_s7", "silver_4114", "titan_rtx_1"]


@pytest.fixture(scope="module")
def plan():
    return RL.Plan(prot.load_protocol(RL.PROTOCOL), DEVICES)


def test_the_reporting_set_is_untouched_by_tuning_and_by_the_earlier_protocol(plan):
    settings = plan.reporting_settings
    assert len(settings) == 35 * 2
    assert {s.percentile for s in settings} == {10, 90}  # the earlier one: 25, 50, 75
    assert all(s.pair != plan.tuning_setting.pair for s in settings)
    assert set(plan.seeds["reporting"]) == set(range(20, 40))
    assert not set(plan.seeds["reporting"]) & (set(P.REPORTING_SEEDS) | set(P.TUNING_SEEDS))
    assert not set(settings) & set(P.reporting_settings(DEVICES))


def test_the_guard_refuses_runs_outside_the_protocol(plan):
    with pytest.raises(P.ProtocolError, match="not a reporting setting"):
        plan.check("reporting", plan.tuning_setting, 20)
    with pytest.raises(P.ProtocolError, match="not a reporting setting"):
        plan.check("reporting", P.Setting("raspi4", "cifar10_test", 50), 20)
    with pytest.raises(P.ProtocolError, match="reporting seed 100"):
        plan.check("reporting", P.Setting("raspi4", "cifar10_test", 10), 100)
    with pytest.raises(P.ProtocolError, match="not a tuning setting"):
        plan.check("tuning", P.Setting("raspi4", "cifar10_test", 10), 100)
    with pytest.raises(P.ProtocolError, match="tuning seed 20"):
        plan.check("tuning", plan.tuning_setting, 20)
    with pytest.raises(P.ProtocolError, match="unknown phase"):
        plan.check("both", plan.tuning_setting, 100)
    plan.check("tuning", plan.tuning_setting, 119)
    plan.check("reporting", P.Setting("pixel3", "imagenet16_test", 90), 39)


def test_equal_tuning_effort_and_complete_plans(plan):
    assert len(plan.grid["rl"]) == len(plan.grid["local"]) == 8
    tuning = plan.tuning()
    assert len(tuning) == 2 * 8 * 20 and len({s.key for s in tuning}) == len(tuning)
    frozen = {"strategies": {s: {"config": 0, "options": {}} for s in plan.strategies}}
    reporting = plan.reporting(frozen)
    assert len(reporting) == 70 * 20 * 6 and len({s.key for s in reporting}) == len(reporting)
    one = [s for s in reporting if s.setting == reporting[0].setting and s.seed == 20]
    assert {s.strategy for s in one} == set(plan.strategies)
    assert len({s.strategy_seed for s in one}) == 1  # the same stream for every strategy


def _record(spec, **over):
    rec = {"key": spec.key, "phase": spec.phase, "setting": spec.setting.key,
           "strategy": spec.strategy, "config": spec.config, "options": spec.options,
           "seed": spec.seed, "strategy_seed": spec.strategy_seed, "frozen_sha256": "f" * 64}
    return rec | over


def test_stored_records_outside_the_protocol_or_the_frozen_choice_are_refused(plan, tmp_path):
    frozen = {"sha256": "f" * 64,
              "strategies": {s: {"config": 0, "options": {}} for s in plan.strategies}}
    spec = plan.reporting(frozen)[0]
    cases = [({}, None), ({"seed": 5}, "outside"), ({"config": 3}, "frozen configuration"),
             ({"frozen_sha256": "0" * 64}, "other frozen"),
             ({"strategy_seed": 1}, "strategy seed")]
    for i, (over, match) in enumerate(cases):
        store = RunStore(tmp_path / f"s{i}" / "reporting.jsonl")
        store.append(_record(spec, **over))
        if match is None:
            assert len(RL.checked(plan, store, "reporting", frozen)) == 1
        else:
            with pytest.raises(P.ProtocolError, match=match):
                RL.checked(plan, store, "reporting", frozen)


def _table(regrets):
    """regrets: strategy -> one mean regret used for every (view, budget) cell."""
    return {s: {f"regret_{v}_{b}": [r, 0.01] for v in ("query", "distinct")
                for b in (100, 150, 300)} for s, r in regrets.items()}


def _tests(p_local):
    return [{"a": "rl", "b": "local", "metric": f"regret_{v}", "budget": b,
             "p_holm": p_local} for v in ("query", "distinct") for b in (100, 150, 300)]


def test_the_decision_rule():
    strategies = ["random", "local", "rl"]
    win = RL.decide(_table({"random": 0.5, "local": 0.3, "rl": 0.2}), _tests(0.01), strategies)
    assert win["rl_leads"] and win["leader"] == "rl"
    # lowest everywhere but not significant against local: local is not the leader either
    # unless its average is lower; rl keeps the lead on average but does not "lead"
    weak = RL.decide(_table({"random": 0.5, "local": 0.3, "rl": 0.2}), _tests(0.2), strategies)
    assert not weak["rl_leads"] and weak["leader"] == "rl"
    lose = RL.decide(_table({"random": 0.5, "local": 0.2, "rl": 0.3}), _tests(0.01), strategies)
    assert not lose["rl_leads"] and lose["leader"] == "local"
    # one cell where another strategy is lower is enough to deny the lead
    table = _table({"random": 0.5, "local": 0.3, "rl": 0.2})
    table["local"]["regret_distinct_300"] = [0.1, 0.01]
    mixed = RL.decide(table, _tests(0.01), strategies)
    assert not mixed["rl_leads"] and mixed["lowest"]["distinct_300"] == "local"


def test_the_protocol_file_names_what_the_script_runs(plan):
    data = json.loads(RL.PROTOCOL.read_text())
    assert data["strategies"] == plan.strategies
    assert set(data["recipe"]["not_retuned"]) | set(RL.TUNED) == set(plan.strategies)
    assert data["budgets"] == list(P.KEY_BUDGETS)
