"""Reference probes: where the reference sits among networks of its space on this machine
now, from a few networks timed interleaved with it (seconds), in the table's units.

A table predicts ratios to a reference as ``predicted(candidate) / predicted(reference)``.
Measured on one Intel VM (2026-12-08, ``benchmarks/results/latency_probe_intel.md``, from
committed check runs), a large part of the error of those ratios is one factor shared by
every candidate of a check run: the model's error on the reference itself, and the machine's
state, which moves the reference against other networks between the build and the use. Ten
probe networks of the same run cut the ratio MAPE of 15 runs from 6.72% to 5.09% on average
(lower in 12 of 15); a network's measured ratio itself moves 3.2% between runs. One factor is
what a few networks measured now can fix (HELP adapts a predictor to a device from 10
measurements; this adapts the reference only).

:func:`probe_archs` draws the probe networks (seeded, never a reference);
:func:`rebased_reference_ms` is the arithmetic: the reference's latency in the table's units
is the median over probes of ``predicted(probe) / measured ratio(probe)``;
:func:`probe_reference` times probes and reference interleaved and returns a
:class:`ReferenceProbe`. Ratios predicted against :attr:`ReferenceProbe.reference_ms` carry
the model's error on the candidate only, and the target ``FACTORxREF`` becomes ``FACTOR *
reference_ms``.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mobile_nas.cost.latency.errors import MeasureError
from mobile_nas.cost.latency.relative import RelativeTiming
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.reference import REFERENCE_ARCHS

#: Probe networks timed by default (``--probe-reference``).
DEFAULT_PROBES = 10
#: Seed of the default probe draw.
DEFAULT_PROBE_SEED = 2026


def probe_archs(space: SearchSpace, k: int, *, seed: int = DEFAULT_PROBE_SEED,
                exclude: Sequence[str] = ()) -> list[Architecture]:
    """``k`` distinct random architectures of ``space`` drawn with ``seed``, none of them a
    registered reference or in ``exclude`` (arch strings)."""
    if k < 1:
        raise MeasureError(f"probes must be >= 1, got {k}")
    skip = set(exclude) | {REFERENCE_ARCHS.get(n).arch for n in REFERENCE_ARCHS.names()}
    rng = np.random.default_rng(seed)
    chosen: dict[str, Architecture] = {}
    for _ in range(100 * k):
        if len(chosen) == k:
            break
        a = space.sample(rng)
        if a.to_string() not in skip:
            chosen.setdefault(a.to_string(), a)
    if len(chosen) < k:
        raise MeasureError(f"space {space.name!r} has fewer than {k} networks to probe with")
    return list(chosen.values())


def rebased_reference_ms(predicted_ms: Sequence[float], measured_ratios: Sequence[float]
                         ) -> float:
    """The reference's latency in the units of ``predicted_ms``: the median over probes of
    predicted ms over measured ratio to the reference."""
    if len(predicted_ms) == 0 or len(predicted_ms) != len(measured_ratios):
        raise MeasureError("rebasing needs one measured ratio per predicted probe, at least one")
    if min(measured_ratios) <= 0 or min(predicted_ms) <= 0:
        raise MeasureError("probe latencies and ratios must be positive")
    return float(statistics.median(p / m for p, m in zip(predicted_ms, measured_ratios,
                                                         strict=True)))


@dataclass(frozen=True)
class ReferenceProbe:
    """The reference placed by probes timed with it now.

    ``reference_ms``: its latency in the table's units (:func:`rebased_reference_ms`);
    ``reference_predicted_ms``: the table's own prediction of it; ``spread_pct``: how far the
    probes' single estimates lie from ``reference_ms`` (median, %), the probe's own error.
    """

    reference: str
    reference_ms: float
    reference_predicted_ms: float
    probes: tuple[str, ...]
    predicted_ms: tuple[float, ...]
    measured_ratios: tuple[float, ...]
    spread_pct: float
    seed: int
    noise_pct: float
    load_avg: tuple[float, float, float] | None
    seconds: float

    @property
    def shift(self) -> float:
        """What the probe multiplies every predicted ratio by (predicted / rebased ms)."""
        return self.reference_predicted_ms / self.reference_ms

    def describe(self) -> str:
        return (f"reference probed with {len(self.probes)} networks timed with it: "
                f"{self.reference_ms:.4g} in the table's ms (the table predicts "
                f"{self.reference_predicted_ms:.4g}: ratios x{self.shift:.3f}; probe spread "
                f"{self.spread_pct:.1f}%, timing noise {self.noise_pct:.1f}%)")

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "reference_ms": self.reference_ms,
                "reference_predicted_ms": self.reference_predicted_ms, "shift": self.shift,
                "probes": list(self.probes), "predicted_ms": list(self.predicted_ms),
                "measured_ratios": list(self.measured_ratios), "spread_pct": self.spread_pct,
                "seed": self.seed, "noise_pct": self.noise_pct,
                "load_avg": list(self.load_avg) if self.load_avg else None,
                "seconds": self.seconds}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ReferenceProbe:
        return cls(reference=str(d["reference"]), reference_ms=float(d["reference_ms"]),
                   reference_predicted_ms=float(d["reference_predicted_ms"]),
                   probes=tuple(d["probes"]), predicted_ms=tuple(d["predicted_ms"]),
                   measured_ratios=tuple(d["measured_ratios"]),
                   spread_pct=float(d["spread_pct"]), seed=int(d["seed"]),
                   noise_pct=float(d["noise_pct"]),
                   load_avg=tuple(d["load_avg"]) if d.get("load_avg") else None,
                   seconds=float(d["seconds"]))


def probe_from_ratios(reference: Architecture, probes: Sequence[Architecture],
                      measured_ratios: Sequence[float],
                      predict_ms: Callable[[Architecture], float], *, seed: int,
                      noise_pct: float, load_avg: tuple[float, float, float] | None = None,
                      seconds: float = 0.0) -> ReferenceProbe:
    """The :class:`ReferenceProbe` of ``probes`` measured at ``measured_ratios`` of
    ``reference`` (``noise_pct``: the timing's noise floor)."""
    predicted = tuple(float(predict_ms(a)) for a in probes)
    measured = tuple(float(m) for m in measured_ratios)
    ref_ms = rebased_reference_ms(predicted, measured)
    spread = statistics.median(abs(p / m / ref_ms - 1) * 100
                               for p, m in zip(predicted, measured, strict=True))
    return ReferenceProbe(reference=reference.to_string(), reference_ms=ref_ms,
                          reference_predicted_ms=float(predict_ms(reference)),
                          probes=tuple(a.to_string() for a in probes),
                          predicted_ms=predicted, measured_ratios=measured,
                          spread_pct=round(float(spread), 3), seed=seed,
                          noise_pct=noise_pct, load_avg=load_avg, seconds=round(seconds, 2))


def probe_from_timing(reference: Architecture, timing: RelativeTiming,
                      predict_ms: Callable[[Architecture], float], *, seed: int
                      ) -> ReferenceProbe:
    """The :class:`ReferenceProbe` of probes already timed against ``reference``."""
    return probe_from_ratios(reference, [c.arch for c in timing.candidates],
                             [c.ratio for c in timing.candidates], predict_ms, seed=seed,
                             noise_pct=timing.noise_pct, load_avg=timing.load_avg,
                             seconds=timing.seconds)


def probe_reference(reference: Architecture, predict_ms: Callable[[Architecture], float],
                    time_probes: Callable[[Sequence[Architecture], Architecture],
                                          RelativeTiming], *,
                    k: int = DEFAULT_PROBES, seed: int = DEFAULT_PROBE_SEED,
                    exclude: Sequence[str] = ()) -> ReferenceProbe:
    """Times ``k`` probe networks (:func:`probe_archs`) against ``reference`` with
    ``time_probes`` (e.g. :func:`~.relative.time_against_reference` with a table's protocol)
    and places the reference among them in the units of ``predict_ms``."""
    probes = probe_archs(reference.search_space, k, seed=seed,
                         exclude=[reference.to_string(), *exclude])
    return probe_from_timing(reference, time_probes(probes, reference), predict_ms, seed=seed)
