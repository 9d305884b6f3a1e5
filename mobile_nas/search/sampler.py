"""Strategies as Optuna samplers, and the sampler of every strategy name.

:class:`StrategySampler` turns any :class:`~mobile_nas.search.strategy.Strategy` into an
``optuna.samplers.BaseSampler``: each trial's parameters are the space's decisions
(``trial.suggest_categorical(decision.name, decision.choices)``), proposed together by
``strategy.ask()``. Before each proposal the sampler tells the strategy about every finished
trial of the study it has not seen yet — its own, other workers' and those of an earlier
(killed) process — so several processes on one storage learn from each other. With
``state_path`` it saves what the strategy learned after every trial and restores it on start.

The state file (``run_search``: ``RUN_DIR/strategy_state.safetensors``) is one safetensors
file, written atomically: the tensors of ``strategy.state_dict()`` (the ``rl`` controller's
LSTM policy, Adam moments and generator state) as named tensors, everything else as JSON in
its metadata (``format`` ``mobile-nas-strategy-state``, ``schema_version`` 2, ``strategy``,
``space``, ``told`` trial numbers, ``rng`` numpy bit-generator state and ``state`` with
``{"__tensor__": name}`` where a tensor was; see :func:`mobile_nas.weightfile.pack_tensors`).
Nothing in it is unpickled. Safetensors rather than lists in the JSON: the default ``rl``
state holds about 124,000 floats (41,000 policy weights plus two Adam moments each), exact in
0.54 MB of safetensors (16 ms per save), against 2.8 MB of JSON text (130 ms) rewritten after
every trial.

Files written before (``torch.save`` data, schema_version 1, ``strategy_state.pt``) are still
read, through :meth:`~mobile_nas.weightfile.WeightFile.load` with ``weights_only=True``: when
``state_path`` is named ``strategy_state.safetensors`` and does not exist, its sibling
``strategy_state.pt`` is read instead; the next save writes the new file (the old one is left
in place and ignored from then on). A file's first bytes, not its name, tell the format (a
``torch.save`` file is a zip archive), so a ``state_path`` of any name holding an old state
is read too and converted in place on the next save.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from mobile_nas.search.strategy import STRATEGIES, Strategy, StrategyError, make_strategy
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.weightfile import WeightFile, pack_tensors, unpack_tensors

#: Strategies provided by Optuna's own samplers rather than a :class:`Strategy`.
OPTUNA_STRATEGIES = ("tpe", "motpe", "nsga2")
#: Strategies that search a Pareto front: accuracy up and every targeted metric down as
#: separate objectives (each target a constraint) instead of one scalar reward.
MULTI_OBJECTIVE_STRATEGIES = ("motpe", "nsga2")
#: The state file ``run_search`` keeps in its run folder, and the one of earlier releases.
STATE_FILE = "strategy_state.safetensors"
LEGACY_STATE_FILE = "strategy_state.pt"
STATE_SCHEMA_VERSION = 2
STATE_FILE_TYPE = WeightFile("strategy state", StrategyError, STATE_SCHEMA_VERSION,
                             kind="mobile-nas-strategy-state")
#: ``torch.save`` states (schema 1, no kind), still read; never written.
LEGACY_STATE_FILE_TYPE = WeightFile("strategy state", StrategyError, 1)


def strategy_names() -> list[str]:
    """Every strategy name ``make_sampler`` accepts."""
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

    def __init__(self, strategy: Strategy, *, state_path: str | os.PathLike[str] | None = None
                 ) -> None:
        self.strategy = strategy
        self.space = strategy.space
        self.state_path = Path(state_path) if state_path is not None else None
        self._told: set[int] = set()
        self._fallback = optuna.samplers.RandomSampler(seed=strategy.seed)
        if self.state_path is not None:
            legacy = self.state_path.with_name(LEGACY_STATE_FILE)
            if self.state_path.exists():
                self._load_state(self.state_path)
            elif self.state_path.name == STATE_FILE and legacy.exists():
                self._load_state(legacy)

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
        """Writes the strategy's state and the told trial numbers atomically (see the module
        docstring for the layout)."""
        if self.state_path is None:
            return
        state, tensors = pack_tensors(self.strategy.state_dict())
        STATE_FILE_TYPE.save_safetensors(self.state_path, tensors, {
            "strategy": self.strategy.name, "space": self.space.name,
            "told": sorted(self._told), "rng": self.strategy.rng.bit_generator.state,
            "state": state})

    def _load_state(self, path: Path) -> None:
        where = repr(str(path))
        if _is_torch_zip(path):  # written before strategy states were safetensors
            meta = LEGACY_STATE_FILE_TYPE.load(path)
            tensors: dict[str, Any] = {}
        else:
            tensors, meta = STATE_FILE_TYPE.load_safetensors(path)
        if meta.get("strategy") != self.strategy.name or meta.get("space") != self.space.name:
            raise StrategyError(
                f"strategy state {where} belongs to strategy {meta.get('strategy')!r} on "
                f"space {meta.get('space')!r}, not {self.strategy.name!r} on "
                f"{self.space.name!r}")
        try:
            state = unpack_tensors(meta["state"], tensors)
            if not isinstance(state, dict):
                raise TypeError("'state' is not a dict")
            self.strategy.load_state_dict(state)
            rng = meta.get("rng")  # a JSON string in schema 1
            if rng is not None:
                self.strategy.rng.bit_generator.state = json.loads(rng) \
                    if isinstance(rng, str) else rng
            self._told = {int(n) for n in meta["told"]}
        except (StrategyError, KeyError, TypeError, ValueError, IndexError, RuntimeError,
                AttributeError, ArithmeticError) as exc:  # what a misshapen state raises
            first = (str(exc).strip().splitlines() or [""])[0][:160]
            detail = first if isinstance(exc, StrategyError) else \
                f"{type(exc).__name__}: {first}"
            raise StrategyError(f"strategy state {where} does not fit strategy "
                                f"{self.strategy.name!r} on {self.space.name!r} ({detail})"
                                ) from None

    @property
    def told(self) -> frozenset[int]:
        return frozenset(self._told)


def _is_torch_zip(path: Path) -> bool:
    """Whether ``path`` holds ``torch.save`` data (a zip archive) rather than safetensors."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def _skipped(state: TrialState, trial: FrozenTrial) -> bool:
    """A candidate the search ruled out without evaluating it (told with its penalized
    reward: see :mod:`mobile_nas.search.runner`)."""
    return state == TrialState.PRUNED and bool(trial.user_attrs.get("skipped")) \
        and "reward" in trial.user_attrs


ConstraintsFn = Callable[[FrozenTrial], Sequence[float]]


def make_sampler(name: str, *, space: SearchSpace, seed: int | None = None,
                 state_path: str | os.PathLike[str] | None = None,
                 constraints_func: ConstraintsFn | None = None,
                 **options: Any) -> BaseSampler:
    """The Optuna sampler of strategy ``name`` (``tpe``, ``motpe`` (multi-objective TPE,
    Ozaki et al. 2020), ``nsga2`` or a registered :class:`Strategy` such as ``rl``,
    ``random``, ``evolution``)."""
    if name in ("tpe", "motpe"):
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
