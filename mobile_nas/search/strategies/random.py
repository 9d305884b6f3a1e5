"""Random search: every decision drawn uniformly and independently."""

from __future__ import annotations

from mobile_nas.search.strategy import Strategy, register_strategy
from mobile_nas.space.architecture import Architecture


@register_strategy
class RandomSearch(Strategy):
    """Uniform samples of the space; ignores rewards."""

    name = "random"

    def ask(self) -> Architecture:
        return self.space.sample(self.rng)

    def tell(self, arch: Architecture, reward: float) -> None:
        pass
