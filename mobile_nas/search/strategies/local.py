"""Local search (White, Nolen & Savani 2020, "Local search is state of the art for neural
architecture search benchmarks"): hill climbing over one-decision changes, with restarts.

A *neighbour* of an architecture differs from it in exactly one decision (on NAS-Bench-201:
one edge's operation changed, 6 x 4 = 24 neighbours).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mobile_nas.search.strategy import Strategy, StrategyError, register_strategy
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace

Indices = tuple[int, ...]


@register_strategy
class LocalSearch(Strategy):
    """The ``local`` strategy: steepest-ascent hill climbing with random restarts.

    * **Start**: ask ``initial_samples`` uniformly random architectures not told before; the
      best of them (by reward) becomes the *current* architecture.
    * **Sweep**: ask every neighbour of the current one, in random order, skipping those
      whose reward is already known (told earlier, by this search or another worker: a
      tabular or deterministic evaluation is not worth a second query).
    * **Move**: once the whole neighbourhood is known, move to the best neighbour if its
      reward is strictly higher than the current one's and sweep again. With
      ``first_improvement`` the move happens as soon as a neighbour better than the current
      one is told, without finishing the sweep.
    * **Restart**: otherwise the current architecture is a local optimum (recorded in
      ``optima``); start again from new random samples.

    ``initial_samples=1`` is the textbook form (start from one random architecture);
    naszilla's implementation starts from the best of 10. Rewards of an architecture told
    twice keep the higher one. Works on any space (it only sees ``space.decisions``).
    """

    name = "local"

    def __init__(self, *, space: SearchSpace, seed: int | None = None, initial_samples: int = 1,
                 first_improvement: bool = False) -> None:
        super().__init__(space=space, seed=seed)
        if not isinstance(initial_samples, int) or initial_samples < 1:
            raise StrategyError(f"bad local options: initial_samples={initial_samples!r} "
                                f"(a positive integer)")
        if not isinstance(first_improvement, bool):
            raise StrategyError(f"bad local options: first_improvement={first_improvement!r} "
                                f"(true or false)")
        self.initial_samples = initial_samples
        self.first_improvement = first_improvement
        self.history: dict[Indices, float] = {}  # best reward of every told architecture
        self.current: Indices | None = None
        self.starts: list[Indices] = []  # random starting candidates asked in this round
        self.pending: list[Indices] = []  # neighbours of ``current`` still to ask
        self.asked: set[Indices] = set()  # asked and not told yet
        self.optima: list[Indices] = []  # local optima reached, in order

    # -- helpers -------------------------------------------------------------------------
    def _indices(self, arch: Architecture) -> Indices:
        return tuple(d.index(v) for d, v in zip(self.space.decisions, arch.values,
                                                strict=True))

    def neighbours(self, indices: Indices) -> list[Indices]:
        """Every architecture that differs from ``indices`` in exactly one decision."""
        out = []
        for pos, d in enumerate(self.space.decisions):
            for choice in range(len(d)):
                if choice != indices[pos]:
                    out.append(indices[:pos] + (choice,) + indices[pos + 1:])
        return out

    def _fresh_random(self) -> Indices:
        for _ in range(100):
            ix = self._indices(self.space.sample(self.rng))
            if ix not in self.history and ix not in self.asked:
                return ix
        return ix  # nearly every architecture is known: a repeat is allowed

    def _move_to(self, indices: Indices) -> None:
        self.current = indices
        order = self.neighbours(indices)
        self.pending = [order[int(i)] for i in self.rng.permutation(len(order))]

    def _ask_indices(self, ix: Indices) -> Architecture:
        self.asked.add(ix)
        return self.space.from_indices(ix)

    # -- ask / tell ----------------------------------------------------------------------
    def ask(self) -> Architecture:
        for _ in range(4 * len(self.space.decisions) + 10):  # a few state changes at most
            if self.current is None:
                if len(self.starts) < self.initial_samples:
                    ix = self._fresh_random()
                    self.starts.append(ix)
                    return self._ask_indices(ix)
                told = [s for s in self.starts if s in self.history]
                if not told:  # every start still in flight (other workers): one more
                    ix = self._fresh_random()
                    self.starts.append(ix)
                    return self._ask_indices(ix)
                self.starts = []
                self._move_to(max(told, key=lambda s: self.history[s]))
                continue
            while self.pending and self.pending[0] in self.history:
                self.pending.pop(0)
            if self.pending:
                return self._ask_indices(self.pending.pop(0))
            known = [n for n in self.neighbours(self.current) if n in self.history]
            best = max(known, key=lambda n: self.history[n]) if known else None
            if best is not None and self.history[best] > self.history[self.current]:
                self._move_to(best)
            else:
                self.optima.append(self.current)
                self.current = None
        raise StrategyError("local search made no proposal (a bug: please report it)")

    def tell(self, arch: Architecture, reward: float) -> None:
        ix = self._indices(arch)
        prev = self.history.get(ix)
        self.history[ix] = float(reward) if prev is None else max(prev, float(reward))
        self.asked.discard(ix)
        if self.first_improvement and self.current is not None and ix != self.current \
                and sum(a != b for a, b in zip(ix, self.current, strict=True)) == 1 \
                and self.history[ix] > self.history[self.current]:
            self._move_to(ix)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"history": [[list(ix), r] for ix, r in self.history.items()],
                "current": None if self.current is None else list(self.current),
                "starts": [list(ix) for ix in self.starts],
                "pending": [list(ix) for ix in self.pending],
                "asked": [list(ix) for ix in sorted(self.asked)],
                "optima": [list(ix) for ix in self.optima]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        def ix(v: Sequence[int]) -> Indices:
            out = tuple(int(i) for i in v)
            if len(out) != len(self.space.decisions):
                raise StrategyError(f"saved local-search state has {len(out)} decisions, "
                                    f"the space {len(self.space.decisions)}")
            return out

        self.history = {ix(k): float(r) for k, r in state.get("history", [])}
        cur = state.get("current")
        self.current = None if cur is None else ix(cur)
        if self.current is not None and self.current not in self.history:
            raise StrategyError("saved local-search state: the current architecture has no "
                                "reward")
        self.starts = [ix(v) for v in state.get("starts", [])]
        self.pending = [ix(v) for v in state.get("pending", [])]
        self.asked = {ix(v) for v in state.get("asked", [])}
        self.optima = [ix(v) for v in state.get("optima", [])]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "initial_samples": self.initial_samples,
                "first_improvement": self.first_improvement}
