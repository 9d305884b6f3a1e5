"""Strategy: the ask/tell contract every search strategy fulfils, and its registry.

A strategy proposes architectures (:meth:`Strategy.ask`) and learns from their rewards
(:meth:`Strategy.tell`). It only ever sees ``space.decisions`` (a tuple of
:class:`~mobile_nas.space.Decision`): nothing mobile-specific, so the same strategy drives the
mobile, cell and NAS-Bench-201 spaces. Through :class:`~mobile_nas.search.sampler.StrategySampler`
every strategy is also an ``optuna.samplers.BaseSampler``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from mobile_nas.errors import MobileNasError
from mobile_nas.registry import Registry
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace


class StrategyError(MobileNasError):
    """An unknown strategy, bad strategy options or an unreadable strategy state."""


class Strategy(ABC):
    """Proposes architectures and learns from their rewards.

    Contract:

    * ``ask()`` returns an architecture of ``space`` (it may repeat one already told).
    * ``tell(arch, reward)`` reports the reward (higher is better; any real number) of an
      architecture. Architectures may be told in any order, may come from other workers and
      may never have been asked by this instance (resumed or shared studies).
    * ``state_dict()`` / ``load_state_dict()`` round-trip everything learned, as JSON-ready
      data (dicts with ``str`` keys, lists, str, int, float, bool, None) whose leaves may
      also be ``torch.Tensor``s. :class:`~mobile_nas.search.sampler.StrategySampler` stores
      the tensors as safetensors and the rest as JSON
      (:func:`~mobile_nas.weightfile.pack_tensors`), so ``load_state_dict`` gets tuples back
      as lists; a dict ``{"__tensor__": ...}`` is reserved. ``load_state_dict`` raises
      :class:`StrategyError` on a state that does not fit (the sampler reports a
      ``KeyError``, ``TypeError``, ``ValueError`` ... from it as one too).

    Constructors are keyword-only and take an explicit ``seed``. Instances are not
    thread-safe.
    """

    name: ClassVar[str] = ""

    def __init__(self, *, space: SearchSpace, seed: int | None = None) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    @abstractmethod
    def ask(self) -> Architecture:
        """The next architecture to evaluate."""

    @abstractmethod
    def tell(self, arch: Architecture, reward: float) -> None:
        """Learns from the ``reward`` of ``arch``."""

    # -- optional hooks ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What the strategy has learned (default: nothing beyond the told history)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`; raises :class:`StrategyError` on a mismatch."""
        return None

    def describe(self) -> dict[str, Any]:
        """Hyper-parameters, JSON-ready (recorded in the study)."""
        return {"name": self.name, "seed": self.seed}


STRATEGIES: Registry[type[Strategy]] = Registry("strategy", StrategyError)


def register_strategy(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: registers a :class:`Strategy` subclass under ``cls.name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    STRATEGIES.register(cls.name, cls)
    return cls


def make_strategy(name: str, *, space: SearchSpace, seed: int | None = None,
                  **options: Any) -> Strategy:
    """An instance of the registered strategy ``name``; unknown names and options raise
    :class:`StrategyError`."""
    cls = STRATEGIES.get(name)
    try:
        return cls(space=space, seed=seed, **options)
    except TypeError as exc:
        raise StrategyError(f"bad options for strategy {name!r}: {exc}") from None
