"""Rank fidelity: how well an evaluator's scores order architectures like their ground truth.

A search only needs the *order* of its accuracy estimates to be right, so an evaluator is judged
by Kendall's τ (tau-b, ties allowed) between its scores and the stand-alone accuracies of a
ground-truth set (:mod:`mobile_nas.train.groundtruth`), with a bootstrap 95% interval over
architectures, Spearman's ρ, and how many of the true top-k the evaluator also puts in its top-k.
The same numbers between two training seeds of the ground truth are the ceiling any estimator
can reach (:func:`seed_noise`).

A search under a latency target compares architectures of similar latency, which latency or
MACs alone cannot order; :func:`matched_fidelity` scores only those pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from mobile_nas.errors import MobileNasError


class FidelityError(MobileNasError):
    """Scores and ground truth that cannot be compared."""


@dataclass(frozen=True)
class Fidelity:
    """Agreement of ``n`` scores with the truth. τ's interval is a percentile bootstrap."""

    n: int
    kendall_tau: float
    tau_low: float
    tau_high: float
    p_value: float  # two-sided, H0: τ = 0
    spearman_rho: float
    top_k: int
    top_k_overlap: float  # fraction of the true top-k that the scores also rank top-k

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rank_fidelity(truth: Sequence[float], scores: Sequence[float], *, top_k: int = 10,
                  bootstrap: int = 2000, seed: int = 0) -> Fidelity:
    """Kendall τ (with a bootstrap 95% interval), Spearman ρ and top-k overlap of ``scores``
    against ``truth`` (higher is better in both)."""
    t = np.asarray(truth, dtype=float)
    s = np.asarray(scores, dtype=float)
    if t.shape != s.shape or t.ndim != 1:
        raise FidelityError(f"need two equally long lists, got {t.shape} and {s.shape}")
    if len(t) < 3:
        raise FidelityError(f"need at least 3 architectures to rank, got {len(t)}")
    if not (np.isfinite(t).all() and np.isfinite(s).all()):
        raise FidelityError("scores and truth must be finite")
    result = kendalltau(t, s)
    tau = float(result.statistic) if np.isfinite(result.statistic) else 0.0
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(t), len(t))
        value = kendalltau(t[idx], s[idx]).statistic
        if np.isfinite(value):
            boot.append(value)
    low, high = (np.percentile(boot, [2.5, 97.5]) if boot else (np.nan, np.nan))
    k = min(top_k, len(t))
    true_top = set(np.argsort(-t, kind="stable")[:k])
    score_top = set(np.argsort(-s, kind="stable")[:k])
    return Fidelity(n=len(t), kendall_tau=tau, tau_low=float(low), tau_high=float(high),
                    p_value=float(result.pvalue) if np.isfinite(result.pvalue) else 1.0,
                    spearman_rho=float(spearmanr(t, s).statistic), top_k=k,
                    top_k_overlap=len(true_top & score_top) / k)


@dataclass(frozen=True)
class SeedNoise:
    """Seed-to-seed agreement of the ground truth: the ceiling of any estimator."""

    n: int
    mean_abs_diff: float  # mean |acc(seed a) - acc(seed b)|, fraction
    max_abs_diff: float
    fidelity: Fidelity  # seed b's accuracies as "scores" of seed a's

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "mean_abs_diff": self.mean_abs_diff,
                "max_abs_diff": self.max_abs_diff, "fidelity": self.fidelity.to_json()}


def seed_noise(first: Sequence[float], second: Sequence[float], **kw: int) -> SeedNoise:
    """Noise between two seeds' accuracies of the same architectures."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    fid = rank_fidelity(a.tolist(), b.tolist(), **kw)
    diff = np.abs(a - b)
    return SeedNoise(n=len(a), mean_abs_diff=float(diff.mean()), max_abs_diff=float(diff.max()),
                     fidelity=fid)


@dataclass(frozen=True)
class MatchedFidelity:
    """Agreement over the pairs of architectures whose costs differ by at most ``ratio``
    (Kendall's τ-a over those pairs), with a bootstrap 95% interval over architectures."""

    n: int
    pairs: int
    ratio: float
    tau: float
    tau_low: float
    tau_high: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _matched_tau(t: np.ndarray, s: np.ndarray, c: np.ndarray, ratio: float
                 ) -> tuple[float, int]:
    i, j = np.triu_indices(len(t), k=1)
    lo, hi = np.minimum(c[i], c[j]), np.maximum(c[i], c[j])
    keep = hi <= ratio * lo
    i, j = i[keep], j[keep]
    if len(i) == 0:
        return float("nan"), 0
    agree = np.sign(t[i] - t[j]) * np.sign(s[i] - s[j])
    return float(agree.mean()), int(len(i))


def matched_fidelity(truth: Sequence[float], scores: Sequence[float], cost: Sequence[float],
                     *, ratio: float = 1.25, bootstrap: int = 1000,
                     seed: int = 0) -> MatchedFidelity:
    """τ-a of ``scores`` against ``truth`` over the pairs whose ``cost`` (e.g. predicted
    latency, > 0) differs by at most ``ratio`` (1.25: within 25%)."""
    t, s, c = (np.asarray(v, dtype=float) for v in (truth, scores, cost))
    if not (t.shape == s.shape == c.shape) or t.ndim != 1:
        raise FidelityError(f"need three equally long lists, got {t.shape}, {s.shape}, "
                            f"{c.shape}")
    if ratio < 1 or not (c > 0).all():
        raise FidelityError("costs must be positive and the ratio at least 1")
    tau, pairs = _matched_tau(t, s, c, ratio)
    if pairs == 0:
        raise FidelityError(f"no two architectures have costs within {ratio}x of each other")
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(t), len(t))
        value, n = _matched_tau(t[idx], s[idx], c[idx], ratio)
        if n:
            boot.append(value)
    low, high = np.percentile(boot, [2.5, 97.5])
    return MatchedFidelity(n=len(t), pairs=pairs, ratio=ratio, tau=tau, tau_low=float(low),
                           tau_high=float(high))


@dataclass(frozen=True)
class TauDifference:
    """τ(a) - τ(b) against the same truth, with a paired bootstrap 95% interval (both
    evaluators resampled on the same architectures, so their shared noise cancels)."""

    n: int
    difference: float
    low: float
    high: float

    @property
    def clearly_above(self) -> bool:
        """Whether ``a`` ranks better than ``b`` beyond the bootstrap noise."""
        return self.low > 0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "clearly_above": self.clearly_above}


def tau_difference(truth: Sequence[float], a: Sequence[float], b: Sequence[float], *,
                   bootstrap: int = 2000, seed: int = 0) -> TauDifference:
    """Paired bootstrap of Kendall τ(``a``, truth) - τ(``b``, truth)."""
    t, x, y = (np.asarray(v, dtype=float) for v in (truth, a, b))
    if not (t.shape == x.shape == y.shape) or t.ndim != 1 or len(t) < 3:
        raise FidelityError(f"need three equally long lists of at least 3, got {t.shape}, "
                            f"{x.shape}, {y.shape}")

    def tau(u: np.ndarray, v: np.ndarray) -> float:
        value = kendalltau(u, v).statistic
        return float(value) if np.isfinite(value) else 0.0

    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(t), len(t))
        boot.append(tau(t[idx], x[idx]) - tau(t[idx], y[idx]))
    low, high = np.percentile(boot, [2.5, 97.5])
    return TauDifference(n=len(t), difference=tau(t, x) - tau(t, y), low=float(low),
                         high=float(high))
