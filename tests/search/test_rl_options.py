"""The RL controller's options: its three updates (elite, reinforce, ppo), the elite over
the whole history, batched no-repeat sampling, and resumable state that includes the
history."""

import pytest
import torch

from mobile_nas.search.strategy import StrategyError, make_strategy
from mobile_nas.space import get_space
from tests.search.conftest import state_file_round_trip


@pytest.fixture
def nb201():
    return get_space("nb201")


def _logp(s, arch) -> float:
    with torch.no_grad():
        _, logp, _ = s.policy(torch.tensor([arch.indices()], dtype=torch.long))
    return float(logp[0])


def _distinct(space, n, start=0):
    return [space.from_indices(tuple((i // 5 ** k) % 5 for k in range(len(space.decisions))))
            for i in range(start, start + n)]


def _champion_gain_in_second_update(space, **options) -> float:
    s = make_strategy("rl", space=space, seed=0, batch_size=5, entropy_coef=0.0,
                      proposal="sample", **options)  # the LSTM proposes and is trained
    for i, a in enumerate(_distinct(space, 5)):  # batch 1: the last one is by far the best
        s.tell(a, 10.0 if i == 4 else 1.0)
    champion = space.from_indices((4, 0, 0, 0, 0, 0))
    after_one = _logp(s, champion)
    # batch 2: mediocre architectures sharing no decision with the champion
    for j in range(5):
        s.tell(space.from_indices((j % 4, 1 + j % 4, 1 + (j + 1) % 4, 1 + (j + 2) % 4,
                                   1 + (j + 3) % 4, 1 + j % 4)), 1.0 + 0.01 * j)
    assert s.updates == 2
    return _logp(s, champion) - after_one


def test_the_elite_keeps_training_on_the_best_architecture_told_so_far(nb201):
    # the elite of everything told still holds the champion, which gains again although
    # batch 2 shares no decision with it
    assert _champion_gain_in_second_update(nb201, update="elite") > 1.0


def _reward(indices) -> float:
    """Favours choice 2 of the first decision; a little spread so the elite is ranked."""
    return float(indices[0] == 2) + 0.05 * sum(indices[1:]) / len(indices)


@pytest.mark.parametrize("update", ["elite", "reinforce", "ppo"])
@pytest.mark.parametrize("seed", [0, 1])
def test_every_update_raises_the_probability_of_the_rewarded_choice(nb201, update, seed):
    # the LSTM proposes (proposal="sample"): what its update learns shows in its own draws
    s = make_strategy("rl", space=nb201, seed=seed, update=update, proposal="sample")
    before = s.probabilities()[0][2]  # decision 0's marginal: the first step has no context
    for _ in range(50):
        a = s.ask()
        s.tell(a, _reward(a.indices()))
    assert s.updates == 5 and s.describe()["update"] == update
    assert before == pytest.approx(0.2) and s.probabilities()[0][2] > 0.6


def test_only_the_policy_gradient_updates_keep_a_baseline(nb201):
    for update, has_baseline in (("elite", False), ("reinforce", True), ("ppo", True)):
        s = make_strategy("rl", space=nb201, seed=0, update=update, proposal="sample")
        for i in range(10):
            s.tell(s.ask(), float(i))
        assert (s.baseline is not None) == has_baseline


def test_history_keeps_the_best_reward_of_a_repeated_architecture(nb201):
    s = make_strategy("rl", space=nb201, seed=0)
    a = nb201.from_indices((0,) * 6)
    s.tell(a, 2.0)
    s.tell(a, 1.0)
    assert s.history == {a.indices(): 2.0}


def test_history_state_round_trip_continues_identically(nb201, tmp_path):
    a = make_strategy("rl", space=nb201, seed=1, batch_size=4)
    for i in range(11):
        a.tell(a.ask(), float(i % 4))
    b = make_strategy("rl", space=nb201, seed=7, batch_size=4)
    b.load_state_dict(state_file_round_trip(a.state_dict(), tmp_path / "s.safetensors"))
    assert b.history == a.history and len(b.history) == 11
    for i in range(9):
        x, y = a.ask(), b.ask()
        assert x == y
        a.tell(x, float(i))
        b.tell(y, float(i))
    assert _logp(a, x) == _logp(b, x)


def test_state_saved_before_the_history_option_still_loads(nb201):
    a = make_strategy("rl", space=nb201, seed=1)
    for i in range(12):
        a.tell(a.ask(), float(i))
    old = a.state_dict()
    old.pop("history")
    old["hparams"] = {k: v for k, v in old["hparams"].items() if k != "risk_scope"}
    b = make_strategy("rl", space=nb201, seed=1)
    b.load_state_dict(old)
    assert b.history == {} and b.updates == a.updates


def test_no_repeat_never_proposes_an_architecture_twice(nb201):
    s = make_strategy("rl", space=nb201, seed=0, batch_size=4)
    asked = []
    for _ in range(60):
        a = s.ask()
        asked.append(a.indices())
        s.tell(a, 1.0 if a.indices()[0] == 0 else 0.0)  # pulls the policy to a corner
    assert len(set(asked)) == 60


@pytest.mark.parametrize("options, match", [
    ({"update": "cem"}, "update='cem'"),
    ({"update": "ppo", "ppo_epochs": 0}, "ppo_epochs=0"),
    ({"elite_fraction": 0.0}, "elite_fraction=0.0"),
    ({"elite_fraction": 1.0}, "elite_fraction=1.0"),
    ({"risk_scope": "batch"}, "risk_scope='batch'"),
    ({"update": "reinforce", "risk_quantile": 0.1}, "risk_quantile=0.1"),
    ({"baseline": "ema"}, "baseline"),
])
def test_bad_options_are_refused(nb201, options, match):
    with pytest.raises(StrategyError, match=match):
        make_strategy("rl", space=nb201, **options)


@pytest.mark.parametrize("old, new", [
    ({"risk_quantile": 0.2}, {"elite_fraction": 0.2}),
    ({"risk_quantile": 0.2, "risk_scope": "history"}, {"elite_fraction": 0.2}),
    ({"risk_quantile": 0}, {"update": "ppo"}),
    ({"risk_quantile": 0, "ppo_epochs": 0}, {"update": "reinforce", "ppo_epochs": 0}),
])
def test_old_option_names_train_exactly_as_the_new_ones(nb201, old, new):
    """A controller made with the old names proposes and learns exactly what one made with
    the new names does (same asks, same weights after three updates); the defaults it would
    fall back to if an old name were ignored (elite 5%, elite update) learn differently."""
    def run(options):  # the LSTM proposes and learns (the edit default does not train it)
        s = make_strategy("rl", space=nb201, seed=0, batch_size=5, proposal="sample",
                          **options)
        asked = []
        for _ in range(15):
            arch = s.ask()
            asked.append(arch.indices())
            s.tell(arch, float(sum(arch.indices())))  # rewards that differ between archs
        assert s.updates == 3
        return asked, {k: v.clone() for k, v in s.policy.state_dict().items()}

    old_asked, old_weights = run(old)
    new_asked, new_weights = run(new)
    assert old_asked == new_asked
    assert all(torch.equal(old_weights[k], new_weights[k]) for k in new_weights)
    _, default_weights = run({})
    assert not all(torch.equal(default_weights[k], new_weights[k]) for k in new_weights)


@pytest.mark.parametrize("options, update, fraction", [
    ({"risk_quantile": 0.1}, "elite", 0.1),
    ({"risk_quantile": 0.1, "risk_scope": "history"}, "elite", 0.1),
    ({"risk_quantile": 0}, "ppo", 0.05),
    ({"risk_quantile": 0, "ppo_epochs": 0}, "reinforce", 0.05),
    ({"risk_quantile": 0, "update": "reinforce"}, "reinforce", 0.05),
])
def test_old_risk_options_map_to_the_named_updates(nb201, options, update, fraction):
    s = make_strategy("rl", space=nb201, seed=0, **options)
    assert s.hparams["update"] == update and s.hparams["elite_fraction"] == fraction


def test_the_old_class_name_is_the_same_class():
    from mobile_nas.search.strategies import ReinforceController, RLController
    from mobile_nas.search.strategy import STRATEGIES

    assert ReinforceController is RLController is STRATEGIES.get("rl")
