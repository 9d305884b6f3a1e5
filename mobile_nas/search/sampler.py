"""Strategies as Optuna samplers, and the sampler of every strategy name.

:class:`StrategySampler` turns any :class:`~mobile_nas.search.strategy.Strategy` into an
``optuna.samplers.BaseSampler``: each trial's parameters are the space's decisions
(``trial.suggest_categorical(decision.name, decision.choices)``), proposed together by
``strategy.ask()``. Before each proposal the sampler tells the strategy about every finished
trial of the study it has not seen yet — its own, other workers' and those of an earlier
(killed) process — so several processes on one storage learn from each other. With
``state_path`` it saves what the strategy learned after every trial (atomically, with
``torch.save``; read back with ``weights_only=True``) and restores it on start.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from mobile_nas.search.strategy import Strategy, StrategyError, make_strategy
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace

#: Strategies provided by Optuna's own samplers rather than a :class:`Strategy`.
OPTUNA_STRATEGIES = ("tpe", "nsga2")
STATE_SCHEMA_VERSION = 1


def strategy_names() -> list[str]:
    """Every strategy name ``make_sampler`` accepts."""
    import mobile_nas.search.strategies  # noqa: F401
    from mobile_nas.search.strategy import STRATEGIES

    return sorted(set(STRATEGIES.names()) | set(OPTUNA_STRATEGIES))


def space_distributions(space: SearchSpace) -> dict[str, BaseDistribution]:
    """One categorical distribution per decision, named like the decision."""
    return {d.name: CategoricalDistribution(d.choices) for d in space.decisions}


def trial_arch(space: SearchSpace, trial: FrozenTrial) -> Architecture | None:
    """The architecture of a trial (None if the trial lacks some decision)."""
    try:
        return space.make({d.name: trial.params[d.name] for d in space.decisions})
    except KeyError:
        return None


def trial_reward(trial: FrozenTrial) -> float:
    """A finished trial's reward: user attr ``reward``, else its single objective value."""
    if "reward" in trial.user_attrs:
        return float(trial.user_attrs["reward"])
    if trial.values is None or len(trial.values) != 1:
        raise StrategyError(f"trial {trial.number} has no 'reward' user attribute and no "
                            f"single objective value")
    return float(trial.values[0])


class StrategySampler(BaseSampler):
    """An Optuna sampler driven by a :class:`Strategy` (see the module docstring).

    Use it in any study whose trials suggest the space's decisions, e.g.::

        sampler = StrategySampler(make_strategy("rl", space=space, seed=0))
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(lambda t: score(sampler.arch_of(t)), n_trials=100)

    The reward told to the strategy is the trial's ``reward`` user attribute if set, else its
    (single) objective value. Not thread-safe: one sampler per process.
    """

    def __init__(self, strategy: Strategy, *, state_path: str | os.PathLike | None = None
                 ) -> None:
        self.strategy = strategy
        self.space = strategy.space
        self.state_path = Path(state_path) if state_path is not None else None
        self._told: set[int] = set()
        self._fallback = optuna.samplers.RandomSampler(seed=strategy.seed)
        if self.state_path is not None and self.state_path.exists():
            self._load_state()

    # -- BaseSampler ---------------------------------------------------------------------
    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return space_distributions(self.space)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        self.sync(study)
        arch = self.strategy.ask()
        return {d.name: v for d, v in zip(self.space.decisions, arch.values, strict=True)
                if d.name in search_space}

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._fallback.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        if trial.number in self._told or not (
                state == TrialState.COMPLETE or _skipped(state, trial)):
            return
        arch = trial_arch(self.space, trial)
        if arch is None:
            return
        if "reward" not in trial.user_attrs and values is not None and len(values) == 1:
            reward = float(values[0])
        else:
            reward = trial_reward(trial)
        self._tell(trial.number, arch, reward)
        self.save_state()

    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    # -- syncing and state ---------------------------------------------------------------
    def arch_of(self, trial: optuna.Trial) -> Architecture:
        """Suggests every decision on ``trial`` and returns the architecture."""
        return self.space.make({d.name: trial.suggest_categorical(d.name, d.choices)
                                for d in self.space.decisions})

    def sync(self, study: optuna.Study) -> int:
        """Tells the strategy every finished trial it has not seen; returns how many."""
        new = 0
        for t in study.get_trials(deepcopy=False,
                                  states=(TrialState.COMPLETE, TrialState.PRUNED)):
            if t.number in self._told or not (t.state == TrialState.COMPLETE
                                              or _skipped(t.state, t)):
                continue
            arch = trial_arch(self.space, t)
            if arch is None:
                self._told.add(t.number)
                continue
            self._tell(t.number, arch, trial_reward(t))
            new += 1
        if new:
            self.save_state()
        return new

    def _tell(self, number: int, arch: Architecture, reward: float) -> None:
        self.strategy.tell(arch, reward)
        self._told.add(number)

    def save_state(self) -> None:
        """Writes the strategy's state and the told trial numbers atomically."""
        if self.state_path is None:
            return
        import torch

        state = {"schema_version": STATE_SCHEMA_VERSION, "strategy": self.strategy.name,
                 "space": self.space.name, "told": sorted(self._told),
                 "state": self.strategy.state_dict(),
                 "rng": json.dumps(self.strategy.rng.bit_generator.state)}
        fd, tmp = tempfile.mkstemp(dir=self.state_path.parent,
                                   prefix=f".{self.state_path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.state_path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _load_state(self) -> None:
        import pickle

        import torch

        try:
            state = torch.load(self.state_path, weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
            raise StrategyError(f"cannot read strategy state {str(self.state_path)!r}: "
                                f"{exc}") from None
        except Exception as exc:  # torch's unpickler fails on corrupt bytes in many ways
            raise StrategyError(f"cannot read strategy state {str(self.state_path)!r}: "
                                f"corrupt ({type(exc).__name__})") from None
        if not isinstance(state, dict) or state.get("schema_version") != STATE_SCHEMA_VERSION:
            raise StrategyError(f"strategy state {str(self.state_path)!r} has no "
                                f"schema_version {STATE_SCHEMA_VERSION}")
        if state.get("strategy") != self.strategy.name or state.get("space") != self.space.name:
            raise StrategyError(
                f"strategy state {str(self.state_path)!r} belongs to strategy "
                f"{state.get('strategy')!r} on space {state.get('space')!r}, not "
                f"{self.strategy.name!r} on {self.space.name!r}")
        self.strategy.load_state_dict(state["state"])
        if "rng" in state:
            self.strategy.rng.bit_generator.state = json.loads(state["rng"])
        self._told = {int(n) for n in state["told"]}

    @property
    def told(self) -> frozenset[int]:
        return frozenset(self._told)


def _skipped(state: TrialState, trial: FrozenTrial) -> bool:
    """A candidate the search ruled out without evaluating it (told with its penalized
    reward: see :mod:`mobile_nas.search.runner`)."""
    return state == TrialState.PRUNED and bool(trial.user_attrs.get("skipped")) \
        and "reward" in trial.user_attrs


ConstraintsFn = Callable[[FrozenTrial], Sequence[float]]


def make_sampler(name: str, *, space: SearchSpace, seed: int | None = None,
                 state_path: str | os.PathLike | None = None,
                 constraints_func: ConstraintsFn | None = None,
                 **options: Any) -> BaseSampler:
    """The Optuna sampler of strategy ``name`` (``tpe``, ``nsga2`` or a registered
    :class:`Strategy` such as ``rl``, ``random``, ``evolution``)."""
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                          constraints_func=constraints_func, **options)
    if name == "nsga2":
        options.setdefault("population_size", 20)
        return optuna.samplers.NSGAIISampler(seed=seed, constraints_func=constraints_func,
                                             **options)
    if name not in strategy_names():
        raise StrategyError(f"unknown strategy {name!r}; known: {', '.join(strategy_names())}")
    return StrategySampler(make_strategy(name, space=space, seed=seed, **options),
                           state_path=state_path)
