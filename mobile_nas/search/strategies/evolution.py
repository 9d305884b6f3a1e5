"""Regularized (aging) evolution, Real et al. 2019."""

from __future__ import annotations

from collections import deque
from typing import Any

from mobile_nas.search.strategy import Strategy, StrategyError, register_strategy
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace


@register_strategy
class RegularizedEvolution(Strategy):
    """A population of the ``population_size`` most recently told architectures.

    Until the population is full, ``ask`` samples uniformly. Then it draws ``sample_size``
    members at random (default ``min(5, population_size)``), takes the one with the best
    reward and mutates ``mutations`` random decisions to a different choice. The oldest
    member dies when a new one is told (aging).
    """

    name = "evolution"

    def __init__(self, *, space: SearchSpace, seed: int | None = None, population_size: int = 20,
                 sample_size: int | None = None, mutations: int = 1) -> None:
        super().__init__(space=space, seed=seed)
        if sample_size is None:
            sample_size = min(5, population_size)
        if population_size < 2 or not 1 <= sample_size <= population_size or mutations < 1:
            raise StrategyError(f"bad evolution options: population_size={population_size}, "
                                f"sample_size={sample_size}, mutations={mutations}")
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutations = mutations
        self.population: deque[tuple[tuple[int, ...], float]] = deque(maxlen=population_size)

    def ask(self) -> Architecture:
        if len(self.population) < self.population_size:
            return self.space.sample(self.rng)
        picks = self.rng.choice(len(self.population), self.sample_size, replace=False)
        parent = max((self.population[int(i)] for i in picks), key=lambda m: m[1])[0]
        return self.space.from_indices(self._mutate(list(parent)))

    def _mutate(self, indices: list[int]) -> list[int]:
        mutable = [i for i, d in enumerate(self.space.decisions) if len(d) > 1]
        for pos in self.rng.choice(mutable, min(self.mutations, len(mutable)), replace=False):
            n = len(self.space.decisions[int(pos)])
            shift = int(self.rng.integers(1, n))
            indices[int(pos)] = (indices[int(pos)] + shift) % n
        return indices

    def tell(self, arch: Architecture, reward: float) -> None:
        self.population.append((arch.indices(), float(reward)))

    def state_dict(self) -> dict[str, Any]:
        return {"population": [[list(ix), r] for ix, r in self.population]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.population.clear()
        for ix, r in state.get("population", []):
            self.population.append((tuple(int(i) for i in ix), float(r)))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "population_size": self.population_size,
                "sample_size": self.sample_size, "mutations": self.mutations}
