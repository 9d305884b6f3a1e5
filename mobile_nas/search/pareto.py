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


def hypervolume_2d(accuracy: Sequence[float], latency_ms: Sequence[float], *,
                   ref_accuracy: float = 0.0, ref_latency_ms: float) -> float:
    """Area dominated by the points (accuracy ↑, latency ↓) and bounded by the reference
    point (``ref_accuracy``, ``ref_latency_ms``); points beyond the reference count zero."""
    pts = sorted((lat, acc) for acc, lat in zip(accuracy, latency_ms, strict=True)
                 if acc > ref_accuracy and lat < ref_latency_ms)
    area, best_acc = 0.0, ref_accuracy
    # sweep from the fastest: each point adds the rectangle its accuracy gains over the best
    # accuracy seen at lower latency, up to the reference latency
    for lat, acc in pts:
        if acc > best_acc:
            area += (acc - best_acc) * (ref_latency_ms - lat)
            best_acc = acc
    return area
