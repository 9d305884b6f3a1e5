"""The RL controller's ``proposal="edit"`` mode: a REINFORCE policy over one-decision edits
of the current architecture, starts drawn by the LSTM (or uniformly), first-improvement
moves; valid, reproducible for a seed, and resumed exactly from its state file."""

import numpy as np
import optuna
import pytest
import torch

from mobile_nas.search.sampler import STATE_FILE, StrategySampler
from mobile_nas.search.strategies.edit_policy import EditPolicy
from mobile_nas.search.strategy import StrategyError, make_strategy
from mobile_nas.space import get_space
from tests.search.conftest import state_file_round_trip


@pytest.fixture
def nb201():
    return get_space("nb201")


def _reward(arch) -> float:
    """A reward with one best cell: count of decisions equal to (1, 2, 3, 4, 0, 1)."""
    return float(sum(a == b for a, b in zip(arch.indices(), (1, 2, 3, 4, 0, 1),
                                            strict=True)))


def _distance(a, b) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def test_the_edit_policy_learns_which_edit_improves():
    sizes = [5] * 6
    policy = EditPolicy(sizes, lr=0.5, temperature=1.0, baseline_decay=0.8)
    current = (0,) * 6
    candidates = EditPolicy.edits(current, sizes)
    assert len(candidates) == 24 and all(b != current[i] for i, b in candidates)
    good, bad = candidates.index((2, 3)), candidates.index((4, 1))
    before = policy.distribution(current, candidates)
    assert np.allclose(before, 1 / 24)
    for _ in range(10):
        policy.reinforce(current, candidates, good, delta=+1.0)
        policy.reinforce(current, candidates, bad, delta=-1.0)
    after = policy.distribution(current, candidates)
    assert after.sum() == pytest.approx(1.0)
    assert after[good] > 2 * before[good] and after[bad] < before[bad] / 2
    # the logits are shared: the same edit from another cell with the same value there
    other = (1, 1, 0, 1, 1, 1)
    assert policy.distribution(other, [(2, 3), (2, 4)])[0] > 0.5


def test_edit_proposals_are_new_cells_one_edit_from_the_current_one(nb201):
    s = make_strategy("rl", space=nb201, seed=3, proposal="edit", batch_size=5)
    asked, edits = set(), 0
    for _ in range(120):
        current = s.current
        arch = s.ask()
        ix = arch.indices()
        assert ix not in asked  # no query is spent on a known cell
        asked.add(ix)
        if current is not None and _distance(ix, current) == 1:
            edits += 1
        s.tell(arch, _reward(arch))
    assert edits >= 90  # most proposals are edits; the rest starts after local optima
    assert s.optima >= 1
    best = max(s.history, key=s.history.get)
    assert s.history[best] == 6.0  # this reward's single optimum is found in 120 queries


@pytest.mark.parametrize("restart", ["policy", "random"])
def test_the_same_seed_proposes_the_same_cells(nb201, restart):
    def run(seed):
        s = make_strategy("rl", space=nb201, seed=seed, proposal="edit", restart=restart)
        out = []
        for _ in range(60):
            a = s.ask()
            out.append(a.indices())
            s.tell(a, _reward(a))
        return out

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_state_round_trip_with_an_edit_in_flight_continues_identically(nb201, tmp_path):
    a = make_strategy("rl", space=nb201, seed=4, proposal="edit", batch_size=4)
    for _ in range(23):
        x = a.ask()
        a.tell(x, _reward(x))
    pending = a.ask()  # asked, not told: in flight when the state is saved
    b = make_strategy("rl", space=nb201, seed=99, proposal="edit", batch_size=4)
    b.load_state_dict(state_file_round_trip(a.state_dict(), tmp_path / "s.safetensors"))
    assert b.current == a.current and b.edits_in_flight == a.edits_in_flight
    a.tell(pending, _reward(pending))
    b.tell(pending, _reward(pending))
    for _ in range(30):
        x, y = a.ask(), b.ask()
        assert x == y
        a.tell(x, _reward(x))
        b.tell(y, _reward(y))
    assert np.array_equal(np.concatenate([t.ravel() for t in a.edit_policy.theta]),
                          np.concatenate([t.ravel() for t in b.edit_policy.theta]))


def test_a_search_killed_and_resumed_from_its_state_file_proposes_the_same(tmp_path):
    """Through StrategySampler (what mobile-nas search saves after every trial)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space("nb201")
    path = tmp_path / STATE_FILE

    def sampler(seed):
        return StrategySampler(make_strategy("rl", space=space, seed=seed, proposal="edit"),
                               state_path=path)

    first = sampler(0)
    study = optuna.create_study(direction="maximize", sampler=first)
    study.optimize(lambda t: _reward(first.arch_of(t)), n_trials=17)
    resumed = sampler(5)  # a new process: its own seed is ignored, the file decides
    assert resumed.told == first.told
    assert [resumed.strategy.ask() for _ in range(5)] == [first.strategy.ask()
                                                          for _ in range(5)]


@pytest.mark.parametrize("options,match", [
    ({"proposal": "mutate"}, "proposal"), ({"proposal": "edit", "restart": "best"}, "restart"),
    ({"proposal": "edit", "edit_lr": 0.0}, "edit_lr"),
    ({"proposal": "edit", "edit_temperature": -1.0}, "edit_temperature")])
def test_bad_edit_options_are_refused(nb201, options, match):
    with pytest.raises(StrategyError, match=match):
        make_strategy("rl", space=nb201, seed=0, **options)


def test_a_state_saved_without_edit_data_still_loads(nb201):
    a = make_strategy("rl", space=nb201, seed=1)
    for _ in range(12):
        x = a.ask()
        a.tell(x, _reward(x))
    state = a.state_dict()
    del state["edit"]
    b = make_strategy("rl", space=nb201, seed=1)
    b.load_state_dict(state)
    assert b.history == a.history and b.current is None


def test_with_uniform_restarts_the_unused_lstm_is_not_trained_and_proposals_do_not_change(
        nb201):
    """restart="random" never draws from the LSTM: its training is skipped, which the
    golden proposals (recorded while it was still trained) show changes no proposal."""
    s = make_strategy("rl", space=nb201, seed=2, batch_size=5)
    before = {k: v.clone() for k, v in s.policy.state_dict().items()}
    for _ in range(40):
        a = s.ask()
        s.tell(a, _reward(a))
    assert s.updates == 0 and not s.buffer
    assert all(torch.equal(before[k], v) for k, v in s.policy.state_dict().items())
    trained = make_strategy("rl", space=nb201, seed=2, batch_size=5, restart="policy")
    for _ in range(40):
        a = trained.ask()
        trained.tell(a, _reward(a))
    assert trained.updates == 8
