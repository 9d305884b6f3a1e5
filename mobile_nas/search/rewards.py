"""Rewards: accuracy penalized by latency and MAC targets (MnasNet, TuNAS).

For each target ``T`` on a metric ``m`` (``latency_ms`` or ``macs``):

* ``soft`` (MnasNet): ``acc × Π (m/T)^w`` with ``w = -0.07`` on both sides of the target.
* ``hard`` (MnasNet): ``w = 0`` when ``m ≤ T`` and ``w = -1`` past it.
* ``absolute`` (TuNAS): ``acc + Σ β·|m/T − 1|`` with ``β < 0`` (default -0.07).

Several targets multiply (MnasNet forms) or add (absolute form). An architecture is
*feasible* when every metric is at most its target.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mobile_nas.errors import MobileNasError

METRICS = ("latency_ms", "macs")
KINDS = ("soft", "hard", "absolute")


class RewardError(MobileNasError):
    """A bad reward definition (unknown metric or kind, a target ≤ 0, a positive β)."""


@dataclass(frozen=True)
class Target:
    """A target value for one metric (``latency_ms`` in milliseconds, ``macs`` in MACs)."""

    metric: str
    value: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise RewardError(f"unknown target metric {self.metric!r}; known: "
                              f"{', '.join(METRICS)}")
        if not self.value > 0 or self.value == float("inf"):
            raise RewardError(f"the {self.metric} target must be a positive number, "
                              f"got {self.value!r}")


@dataclass(frozen=True)
class Reward:
    """A reward over accuracy and metrics; see the module docstring.

    ``w`` is the MnasNet soft exponent (used for ``soft``); ``beta`` the TuNAS coefficient
    (used for ``absolute``).
    """

    targets: tuple[Target, ...]
    kind: str = "soft"
    w: float = -0.07
    beta: float = -0.07

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise RewardError(f"unknown reward {self.kind!r}; known: {', '.join(KINDS)}")
        if not self.targets:
            raise RewardError("a reward needs at least one target")
        metrics = [t.metric for t in self.targets]
        if len(set(metrics)) != len(metrics):
            raise RewardError(f"one target per metric, got {metrics}")
        if self.beta >= 0:
            raise RewardError(f"the absolute-reward beta must be negative, got {self.beta}")
        if self.w > 0:
            raise RewardError(f"the soft-reward exponent w must be ≤ 0, got {self.w}")

    def __call__(self, accuracy: float, metrics: Mapping[str, float]) -> float:
        """The reward of an architecture of ``accuracy`` with ``metrics`` (e.g. latency_ms)."""
        ratios = [self._ratio(t, metrics) for t in self.targets]
        if self.kind == "absolute":
            return float(accuracy + sum(self.beta * abs(r - 1.0) for r in ratios))
        factor = 1.0
        for r in ratios:
            if self.kind == "soft":
                factor *= r ** self.w
            elif r > 1.0:  # hard: no bonus under the target, w = -1 past it
                factor *= r ** -1.0
        return float(accuracy * factor)

    def feasible(self, metrics: Mapping[str, float]) -> bool:
        """True when every metric meets its target."""
        return all(self._ratio(t, metrics) <= 1.0 for t in self.targets)

    def beyond(self, metrics: Mapping[str, float], margin: float) -> bool:
        """True when some metric exceeds its target by more than ``margin`` (a fraction:
        0.1 is 10% past the target)."""
        return any(self._ratio(t, metrics) > 1.0 + margin for t in self.targets)

    def target(self, metric: str) -> float | None:
        for t in self.targets:
            if t.metric == metric:
                return t.value
        return None

    @staticmethod
    def _ratio(target: Target, metrics: Mapping[str, float]) -> float:
        try:
            value = float(metrics[target.metric])
        except KeyError:
            raise RewardError(f"no {target.metric} value to compare with its target") from None
        return value / target.value

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "w": self.w, "beta": self.beta,
                "targets": {t.metric: t.value for t in self.targets}}


def make_reward(*, latency_target_ms: float | None = None, macs_target: float | None = None,
                kind: str = "soft", w: float = -0.07, beta: float = -0.07) -> Reward:
    """A :class:`Reward` over the given targets (at least one)."""
    targets: Sequence[Target] = [
        Target(m, v) for m, v in (("latency_ms", latency_target_ms), ("macs", macs_target))
        if v is not None
    ]
    return Reward(tuple(targets), kind=kind, w=w, beta=beta)
