"""One suite for every strategy, on a mobile space and a cell space (strategies only see
``space.decisions``)."""

import optuna
import pytest

from mobile_nas.search.sampler import StrategySampler, make_sampler, strategy_names
from mobile_nas.search.strategy import STRATEGIES, StrategyError, make_strategy
from mobile_nas.space import get_space
from tests.search.conftest import state_file_round_trip

OWN = ["random", "evolution", "local", "rl"]


def test_every_strategy_name_is_known():
    assert set(strategy_names()) == {"random", "evolution", "local", "rl", "tpe", "motpe", "nsga2"}
    assert set(OWN) <= set(STRATEGIES.names())


@pytest.mark.parametrize("space_name", ["fmnist28", "nb201"])
@pytest.mark.parametrize("name", OWN)
def test_ask_tell_in_space(name, space_name):
    space = get_space(space_name)
    s = make_strategy(name, space=space, seed=0, **({"population_size": 4} if
                                                   name == "evolution" else {}))
    for i in range(12):
        arch = s.ask()
        space.validate(arch)
        s.tell(arch, float(i % 5))


@pytest.mark.parametrize("name", OWN)
def test_same_seed_same_proposals(name, fmnist28):
    runs = []
    for _ in range(2):
        s = make_strategy(name, space=fmnist28, seed=3)
        seq = []
        for _ in range(10):
            a = s.ask()
            seq.append(a.to_string())
            s.tell(a, float(len(seq[-1]) % 7))
        runs.append(seq)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", OWN)
def test_state_round_trip_continues_identically(name, fmnist28, tmp_path):
    a = make_strategy(name, space=fmnist28, seed=1)
    for i in range(9):
        a.tell(a.ask(), float(i))
    b = make_strategy(name, space=fmnist28, seed=99)
    b.load_state_dict(state_file_round_trip(a.state_dict(), tmp_path / "s.safetensors"))
    if name == "random":
        return  # random search learns nothing; its proposals depend only on the seed
    b.rng.bit_generator.state = a.rng.bit_generator.state  # the sampler saves it too
    if name == "rl":
        b.generator.set_state(a.generator.get_state())
    for i in range(6):
        x, y = a.ask(), b.ask()
        assert x == y
        a.tell(x, float(i))
        b.tell(y, float(i))


def test_unknown_strategy_and_bad_options(fmnist28):
    with pytest.raises(StrategyError, match="unknown strategy 'hill'"):
        make_sampler("hill", space=fmnist28)
    with pytest.raises(StrategyError, match="bad options for strategy 'rl'"):
        make_strategy("rl", space=fmnist28, learning_rate=1.0)
    with pytest.raises(StrategyError, match="bad rl options"):
        make_strategy("rl", space=fmnist28, lr=-1.0)


def test_evolution_mutates_one_decision_of_a_tournament_winner(fmnist28):
    s = make_strategy("evolution", space=fmnist28, seed=0, population_size=5, sample_size=5)
    archs = [fmnist28.sample(i) for i in range(5)]
    for i, a in enumerate(archs):
        s.tell(a, float(i))  # the last one is the best
    child = s.ask()
    diff = sum(x != y for x, y in zip(child.indices(), archs[-1].indices(), strict=True))
    assert diff == 1
    s.tell(child, 10.0)
    assert len(s.population) == 5 and archs[0].indices() not in [m[0] for m in s.population]


def _toy_reward(space, arch) -> float:
    """Rewards choosing index 0 everywhere (what a policy must learn)."""
    return sum(i == 0 for i in arch.indices()) / len(space.decisions)


@pytest.mark.parametrize("options", [{}, {"proposal": "sample"}])
def test_rl_controller_learns_a_toy_reward(options):
    space = get_space("nb201")  # 6 decisions of 5 choices: random scores 0.2 on average
    s = make_strategy("rl", space=space, seed=0, **options)
    first = [_toy_reward(space, s.ask()) for _ in range(16)]
    for _ in range(160):
        a = s.ask()
        s.tell(a, _toy_reward(space, a))
    last = [_toy_reward(space, s.ask()) for _ in range(16)]
    assert sum(last) / 16 > sum(first) / 16 + 0.3
    if options:  # the LSTM proposes: it took one update per batch
        assert s.updates == 160 // s.hparams["batch_size"]
    else:  # edits of the current architecture: the edit policy took one step per edit
        assert s.edit_policy.steps >= 100


@pytest.mark.parametrize("name", OWN)
def test_strategy_is_an_optuna_sampler(name, fmnist28):
    sampler = make_sampler(name, space=fmnist28, seed=0)
    assert isinstance(sampler, optuna.samplers.BaseSampler)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: _toy_reward(fmnist28, sampler.arch_of(t)), n_trials=10)
    assert len(sampler.told) == 10
    assert all(set(t.params) == {d.name for d in fmnist28.decisions} for t in study.trials)


def test_sampler_learns_from_trials_it_did_not_propose(fmnist28, tmp_path):
    """What a second worker (or a resumed process) sees: trials added by someone else."""
    storage = f"sqlite:///{tmp_path}/s.db"
    other = optuna.create_study(study_name="s", storage=storage, direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    other.optimize(lambda t: _toy_reward(fmnist28, fmnist28.make(
        {d.name: t.suggest_categorical(d.name, d.choices) for d in fmnist28.decisions})),
        n_trials=5)
    sampler = StrategySampler(make_strategy("evolution", space=fmnist28, seed=0,
                                            population_size=4),
                              state_path=tmp_path / "state.safetensors")
    mine = optuna.load_study(study_name="s", storage=storage, sampler=sampler)
    mine.optimize(lambda t: _toy_reward(fmnist28, sampler.arch_of(t)), n_trials=2)
    assert sampler.told == frozenset(range(7))
    # restored from the file: knows every trial, same population
    again = StrategySampler(make_strategy("evolution", space=fmnist28, seed=5,
                                          population_size=4),
                            state_path=tmp_path / "state.safetensors")
    assert again.told == sampler.told
    assert list(again.strategy.population) == list(sampler.strategy.population)


def test_state_file_of_another_strategy_is_refused(fmnist28, tmp_path):
    s = StrategySampler(make_strategy("evolution", space=fmnist28, seed=0),
                        state_path=tmp_path / "state.safetensors")
    s.save_state()
    with pytest.raises(StrategyError, match="belongs to strategy 'evolution'"):
        StrategySampler(make_strategy("rl", space=fmnist28, seed=0),
                        state_path=tmp_path / "state.safetensors")
