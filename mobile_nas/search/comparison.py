"""Comparing search strategies over many settings: one number per setting, a paired test over
the settings, Holm over the comparisons.

A benchmark that runs strategies on several *settings* (a device, a dataset, a latency
target, ...) with several seeds each has two sources of variation: seeds within a setting and
the settings themselves. Regret on one setting can be ten times that on another, so the runs
of different settings are not draws from one population, and a test that pools every run
(Mann-Whitney U on all (setting, seed) values of strategy a against those of b) counts 20
seeds x 105 settings as 2,100 independent observations of one difference. Its p-values
(1e-146 and the like) measure how many runs were made, not how consistently one strategy
beats the other across settings.

The unit of replication here is the setting:

* :func:`per_setting_means` reduces a strategy's runs to one number per setting (the mean
  over its seeds);
* :func:`paired_wilcoxon` compares two strategies by the Wilcoxon signed-rank test over the
  settings both ran, paired by setting (``scipy.stats.wilcoxon``: zero differences dropped,
  the ``wilcox`` convention; exact null distribution up to 50 settings without ties, the
  normal approximation beyond);
* :func:`holm` adjusts a family of p-values (Holm 1979, step-down), and :func:`with_holm`
  applies it to a family of :class:`PairedComparison`;
* :func:`pooled_mann_whitney` is the pooled test, kept as a secondary figure only.

:func:`compare_pairs` does all of it for a list of (a, b) pairs. The functions take plain
numbers keyed by setting, so any benchmark (NAS-Bench-201, the RL work, per query or per
distinct architecture) can use them; nothing here knows about search spaces.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

ALTERNATIVES = ("less", "greater", "two-sided")


@dataclass(frozen=True)
class PairedComparison:
    """Strategy ``a`` against ``b`` over the settings both ran.

    ``alternative`` is about ``a - b``: ``"less"`` tests that ``a``'s per-setting means are
    lower (e.g. regret), ``"greater"`` that they are higher (e.g. hypervolume). ``settings``
    is the number of paired settings, ``a_lower`` / ``a_higher`` / ``ties`` how many of them
    have ``a``'s mean below, above or equal to ``b``'s; ``mean_difference`` and
    ``median_difference`` are of ``a - b`` over the settings. ``p`` is the one-sided (or
    two-sided) Wilcoxon signed-rank p-value, 1.0 when no setting differs; ``pooled_p`` the
    Mann-Whitney U p-value of every run of ``a`` against every run of ``b`` (secondary:
    pools settings as one population), ``runs_a`` / ``runs_b`` the numbers of runs pooled.
    ``p_holm`` / ``pooled_p_holm`` are set by :func:`with_holm` (None before).
    """

    a: str
    b: str
    alternative: str
    settings: int
    a_lower: int
    a_higher: int
    ties: int
    mean_difference: float
    median_difference: float
    statistic: float
    p: float
    pooled_p: float | None = None
    runs_a: int = 0
    runs_b: int = 0
    p_holm: float | None = None
    pooled_p_holm: float | None = None

    @property
    def a_better(self) -> int:
        """Settings where ``a`` is better in the direction of the alternative (lower for
        ``less``, higher for ``greater``; for ``two-sided``, lower)."""
        return self.a_higher if self.alternative == "greater" else self.a_lower

    @property
    def b_better(self) -> int:
        return self.a_lower if self.alternative == "greater" else self.a_higher

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(ALTERNATIVES)}, "
                         f"got {alternative!r}")


def per_setting_means(runs: Iterable[tuple[Hashable, float]]) -> dict[Hashable, float]:
    """The mean value per setting of ``(setting, value)`` pairs (one pair per run)."""
    sums: dict[Hashable, list[float]] = {}
    for setting, value in runs:
        sums.setdefault(setting, []).append(float(value))
    return {k: math.fsum(v) / len(v) for k, v in sums.items()}


def paired_wilcoxon(a: Mapping[Hashable, float], b: Mapping[Hashable, float], *,
                    alternative: str, a_name: str = "a", b_name: str = "b"
                    ) -> PairedComparison:
    """Wilcoxon signed-rank test of ``a`` against ``b`` (one number per setting each),
    paired by setting over the settings both have. Raises ``ValueError`` for an unknown
    ``alternative`` or when they share no setting."""
    from scipy.stats import wilcoxon

    _check_alternative(alternative)
    keys = [k for k in a if k in b]
    if not keys:
        raise ValueError(f"{a_name} and {b_name} share no setting to pair")
    x = np.array([a[k] for k in keys], dtype=float)
    y = np.array([b[k] for k in keys], dtype=float)
    d = x - y
    lower, higher = int((d < 0).sum()), int((d > 0).sum())
    if lower + higher == 0:  # no setting differs: no evidence either way
        statistic, p = float("nan"), 1.0
    else:
        res = wilcoxon(x, y, alternative=alternative, zero_method="wilcox")
        statistic, p = float(res.statistic), float(res.pvalue)
    return PairedComparison(a=a_name, b=b_name, alternative=alternative, settings=len(keys),
                            a_lower=lower, a_higher=higher, ties=len(keys) - lower - higher,
                            mean_difference=float(d.mean()),
                            median_difference=float(np.median(d)),
                            statistic=statistic, p=p)


def pooled_mann_whitney(x: Sequence[float], y: Sequence[float], *, alternative: str
                        ) -> float:
    """Mann-Whitney U p-value of every value of ``x`` against every value of ``y`` as two
    populations (secondary: see the module docstring). 1.0 with fewer than two values."""
    from scipy.stats import mannwhitneyu

    _check_alternative(alternative)
    if len(x) < 2 or len(y) < 2:
        return 1.0
    return float(mannwhitneyu(list(x), list(y), alternative=alternative).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), in the order
    given."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    out = [0.0] * len(pvalues)
    running = 0.0
    m = len(pvalues)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def with_holm(family: Sequence[PairedComparison]) -> list[PairedComparison]:
    """The comparisons of one family with ``p_holm`` (Holm over the Wilcoxon p-values) and
    ``pooled_p_holm`` (Holm over the pooled p-values, where every one has one) set."""
    adjusted = holm([c.p for c in family])
    pooled = [c.pooled_p for c in family]
    pooled_adj: list[float | None] = [None] * len(family)
    if all(p is not None for p in pooled):
        pooled_adj = list(holm([float(p) for p in pooled if p is not None]))
    return [replace(c, p_holm=h, pooled_p_holm=ph)
            for c, h, ph in zip(family, adjusted, pooled_adj, strict=True)]


def compare_pairs(runs: Mapping[str, Sequence[tuple[Hashable, float]]],
                  pairs: Sequence[tuple[str, str]], *, alternative: str
                  ) -> list[PairedComparison]:
    """For each ``(a, b)`` of ``pairs``: the per-setting Wilcoxon test of ``a`` against ``b``
    (means over each strategy's runs of a setting, paired over the settings both ran) and
    the pooled Mann-Whitney p of all their runs. ``runs[s]`` holds ``(setting, value)`` per
    run of strategy ``s``. Not adjusted: pass the family to :func:`with_holm`."""
    means = {s: per_setting_means(r) for s, r in runs.items()}
    out = []
    for a, b in pairs:
        c = paired_wilcoxon(means[a], means[b], alternative=alternative, a_name=a, b_name=b)
        out.append(replace(c, pooled_p=pooled_mann_whitney(
            [v for _, v in runs[a]], [v for _, v in runs[b]], alternative=alternative),
            runs_a=len(runs[a]), runs_b=len(runs[b])))
    return out
