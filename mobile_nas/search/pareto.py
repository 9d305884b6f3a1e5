"""Non-dominated sets and hypervolume over (accuracy ↑, latency ↓, MACs ↓)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def non_dominated(points: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[int]:
    """Indices of the points no other point dominates (ties: all kept, duplicates kept)."""
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return []
    signs = np.where(np.asarray(maximize), 1.0, -1.0)
    scored = arr * signs  # now every objective is "higher is better"
    keep = []
    for i, p in enumerate(scored):
        dominated = np.any(np.all(scored >= p, axis=1) & np.any(scored > p, axis=1))
        if not dominated:
            keep.append(i)
    return keep


def hypervolume(points: Sequence[Sequence[float]], maximize: Sequence[bool],
                reference: Sequence[float]) -> float:
    """The exact hypervolume dominated by ``points`` and bounded by ``reference``, in any
    number of objectives (``maximize[k]`` says whether objective ``k`` is better higher).

    Points that are not strictly better than the reference in every objective add nothing
    and are dropped; dominated points and duplicates are allowed. The volume is in the
    objectives' own units (accuracy × ms × MACs), so compare it only under one reference
    point. Computed by Optuna's exact algorithm (``optuna._hypervolume``: a sweep in 2-D,
    an O(n²) grid in 3-D, WFG above), tested against hand-computed fronts in
    ``tests/search/test_pareto.py``.
    """
    from optuna._hypervolume import compute_hypervolume

    signs = np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)  # as losses
    ref = np.asarray(reference, dtype=float) * signs
    arr = np.asarray(points, dtype=float).reshape(-1, len(ref)) * signs
    arr = arr[np.all(arr < ref, axis=1)]
    if len(arr) == 0:
        return 0.0
    return float(compute_hypervolume(arr, ref))


def hypervolume_2d(accuracy: Sequence[float], latency_ms: Sequence[float], *,
                   ref_accuracy: float = 0.0, ref_latency_ms: float) -> float:
    """Area dominated by the points (accuracy ↑, latency ↓) and bounded by the reference
    point (``ref_accuracy``, ``ref_latency_ms``); points beyond the reference count zero."""
    pts = list(zip(accuracy, latency_ms, strict=True))
    return hypervolume(pts, (True, False), (ref_accuracy, ref_latency_ms))
