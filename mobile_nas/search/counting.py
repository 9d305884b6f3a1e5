"""Counting a search's effort two ways: per query, and per distinct architecture evaluated.

A strategy that proposes an architecture it has already been told about (TPE and NSGA-II
do; ``rl`` and ``local`` do not) spends a query on it. Per *query*, that repeat costs one
unit of budget; per *distinct evaluation*, it is free: on a deterministic or tabular
evaluator nothing new is learned and nothing needs to be trained again, so budget ``b``
means the first ``b`` different architectures. Reporting both views keeps a comparison fair
to strategies that repeat and to those that never do.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

import numpy as np

VIEWS = ("query", "distinct")

T = TypeVar("T")


def repeat_flags(keys: Sequence[Hashable]) -> list[bool]:
    """For each query, whether its architecture (``keys[i]``) was queried before it."""
    seen: set[Hashable] = set()
    out = []
    for k in keys:
        out.append(k in seen)
        seen.add(k)
    return out


def best_so_far(values: Sequence[float], feasible: Sequence[bool], repeats: Sequence[bool],
                *, view: str) -> np.ndarray:
    """The best feasible value found, as a function of the budget spent.

    ``view="query"``: element ``i`` is the best feasible value among the first ``i + 1``
    queries. ``view="distinct"``: element ``i`` is the best among the first ``i + 1``
    distinct architectures (queries flagged in ``repeats`` are skipped: they cost
    nothing). NaN until a feasible value is found. The curve is as long as the budget the
    run spent in that view (queries, or distinct architectures).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    v = np.asarray(values, dtype=float)
    ok = np.asarray(feasible, dtype=bool)
    rep = np.asarray(repeats, dtype=bool)
    if not len(v) == len(ok) == len(rep):
        raise ValueError(f"values, feasible and repeats differ in length: {len(v)}, "
                         f"{len(ok)}, {len(rep)}")
    if view == "distinct":
        v, ok = v[~rep], ok[~rep]
    if len(v) == 0:
        return np.empty(0)
    best = np.maximum.accumulate(np.where(ok, v, -np.inf))
    return np.where(np.isfinite(best), best, np.nan)


def prefix(sequence: Sequence[T], repeats: Sequence[bool], budget: int, *, view: str
           ) -> list[T]:
    """The elements of ``sequence`` (one per query) within ``budget`` in ``view``: the first
    ``budget`` queries, or every query up to and including the ``budget``-th distinct one
    (repeats among them are kept: they are free, not absent)."""
    if view == "query":
        return list(sequence[:budget])
    if view != "distinct":
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    distinct = 0
    for i, r in enumerate(repeats):
        distinct += not r
        if distinct > budget:
            return list(sequence[:i])
    return list(sequence)
