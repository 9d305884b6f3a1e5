"""The RL controller's options: risk-seeking over the whole history, batched no-repeat
sampling, and resumable state that includes the history."""

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


def _champion_gain_in_second_update(space, scope) -> float:
    s = make_strategy("rl", space=space, seed=0, batch_size=5, risk_scope=scope,
                      risk_quantile=0.2, entropy_coef=0.0)
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


def test_history_scope_keeps_training_on_the_best_architecture_told_so_far(nb201):
    gain = {scope: _champion_gain_in_second_update(nb201, scope)
            for scope in ("batch", "history")}
    # history: the elite of everything told still holds the champion, which gains again;
    # batch: the second update only pushes batch 2's best (some of it is Adam momentum)
    assert gain["history"] > 1.0
    assert gain["history"] > gain["batch"] + 1.0


def test_history_keeps_the_best_reward_of_a_repeated_architecture(nb201):
    s = make_strategy("rl", space=nb201, seed=0, risk_scope="history")
    a = nb201.from_indices((0,) * 6)
    s.tell(a, 2.0)
    s.tell(a, 1.0)
    assert s.risk_history == {a.indices(): 2.0}


def test_history_state_round_trip_continues_identically(nb201, tmp_path):
    a = make_strategy("rl", space=nb201, seed=1, risk_scope="history", batch_size=4)
    for i in range(11):
        a.tell(a.ask(), float(i % 4))
    b = make_strategy("rl", space=nb201, seed=7, risk_scope="history", batch_size=4)
    b.load_state_dict(state_file_round_trip(a.state_dict(), tmp_path / "s.safetensors"))
    assert b.risk_history == a.risk_history and len(b.risk_history) == 11
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
    assert b.risk_history == {} and b.updates == a.updates


def test_no_repeat_never_proposes_an_architecture_twice(nb201):
    s = make_strategy("rl", space=nb201, seed=0, batch_size=4)
    asked = []
    for _ in range(60):
        a = s.ask()
        asked.append(a.indices())
        s.tell(a, 1.0 if a.indices()[0] == 0 else 0.0)  # pulls the policy to a corner
    assert len(set(asked)) == 60


def test_bad_new_options_are_refused(nb201):
    with pytest.raises(StrategyError, match="risk_scope"):
        make_strategy("rl", space=nb201, risk_scope="everything")


def test_old_option_names_are_still_accepted(nb201):
    s = make_strategy("rl", space=nb201, seed=0, lr=0.05, batch_size=10, baseline_decay=0.8,
                      entropy_coef=0.002, ppo_epochs=4, ppo_clip=0.2, hidden=64, tanh_c=2.5,
                      risk_quantile=0.1, no_repeat=True)
    for i in range(10):
        s.tell(s.ask(), float(i))
    assert s.updates == 1
