"""A policy over one-decision edits of an architecture, trained by REINFORCE.

The policy scores the edit "set decision ``i`` from choice ``a`` to choice ``b``" with a logit
``theta[i][a, b]`` (one table per decision, shared by every architecture), and draws an edit
of the current architecture from the softmax of those logits over the edits it may make
(:meth:`EditPolicy.distribution`: the caller masks edits whose result is already known).
After the edit's result is told, :meth:`EditPolicy.reinforce` takes one policy-gradient step
on the advantage of that edit (how much better the result is than the architecture it
edited, over a moving baseline): edits that tend to improve an architecture become likely,
edits that tend to hurt it unlikely. This is the "policy over mutations" of RL-guided local
search; :class:`~mobile_nas.search.strategies.reinforce.RLController` uses it with
``proposal="edit"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

Indices = tuple[int, ...]
Edit = tuple[int, int]  # (decision, new choice)


class EditPolicy:
    """Logits of one-decision edits and their REINFORCE update (numpy, a few hundred
    parameters: cheap enough to update after every tell)."""

    def __init__(self, sizes: Sequence[int], *, lr: float, temperature: float,
                 baseline_decay: float) -> None:
        self.sizes = [int(n) for n in sizes]
        self.lr = lr
        self.temperature = temperature
        self.baseline_decay = baseline_decay
        self.theta = [np.zeros((n, n)) for n in self.sizes]
        self.baseline = 0.0  # moving average of the advantages' raw value
        self.scale = 0.0  # moving average of their squared deviation
        self.steps = 0

    @staticmethod
    def edits(current: Indices, sizes: Sequence[int]) -> list[Edit]:
        """Every one-decision edit of ``current``."""
        return [(i, b) for i, n in enumerate(sizes) for b in range(n) if b != current[i]]

    def distribution(self, current: Indices, candidates: Sequence[Edit]) -> np.ndarray:
        """Probabilities of ``candidates`` (edits of ``current``) under the policy."""
        logits = np.array([self.theta[i][current[i], b] for i, b in candidates])
        z = logits / self.temperature
        z -= z.max()
        p = np.exp(z)
        probabilities: np.ndarray = p / p.sum()
        return probabilities

    def reinforce(self, current: Indices, candidates: Sequence[Edit], chosen: int,
                  delta: float) -> float:
        """One REINFORCE step for drawing ``candidates[chosen]`` from ``current``, whose
        result scored ``delta`` against ``current`` (reward difference). The advantage is
        ``delta`` less a moving baseline, in units of a moving standard deviation; returns
        it."""
        d = self.baseline_decay
        if self.steps == 0:
            self.baseline, self.scale = delta, 0.0
        advantage = delta - self.baseline
        if self.scale > 1e-12:
            advantage /= float(np.sqrt(self.scale))
        elif self.steps == 0:
            advantage = 0.0  # nothing to compare the first edit with
        advantage = float(np.clip(advantage, -3.0, 3.0))
        self.scale = d * self.scale + (1 - d) * (delta - self.baseline) ** 2
        self.baseline = d * self.baseline + (1 - d) * delta
        self.steps += 1
        p = self.distribution(current, candidates)
        grad = -p
        grad[chosen] += 1.0  # d log p(chosen) / d logits
        step = self.lr * advantage / self.temperature
        for (i, b), g in zip(candidates, grad, strict=True):
            self.theta[i][current[i], b] += step * g
        return advantage

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"theta": [t.tolist() for t in self.theta], "baseline": self.baseline,
                "scale": self.scale, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        theta = [np.asarray(t, dtype=float) for t in state["theta"]]
        if [t.shape for t in theta] != [(n, n) for n in self.sizes]:
            raise ValueError("saved edit policy does not fit this space's decisions")
        self.theta = theta
        self.baseline = float(state["baseline"])
        self.scale = float(state["scale"])
        self.steps = int(state["steps"])
