"""Which latency a number is: the clock that timed it and the statistic taken over the runs.

``bench`` reports, ``cost --measure`` measures and a calibrated table predicts one
:class:`LatencyStatistic`, named in their outputs (``"wall-clock median"``), so that a
prediction is only ever compared with a measurement of the same quantity. The default,
:data:`WALL_MEDIAN`, is what a user measures: the median elapsed time of batch-1 inferences.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLOCKS = ("wall", "cpu")
STATISTICS = ("median", "min")


@dataclass(frozen=True)
class LatencyStatistic:
    """``clock`` (``wall``: elapsed time; ``cpu``: CPU time of the timing thread) and
    ``statistic`` (``median`` or ``min`` of the timed runs)."""

    clock: str = "wall"
    statistic: str = "median"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS:
            raise ValueError(f"unknown clock {self.clock!r}; known: {', '.join(CLOCKS)}")
        if self.statistic not in STATISTICS:
            raise ValueError(f"unknown statistic {self.statistic!r}; known: "
                             f"{', '.join(STATISTICS)}")

    @property
    def name(self) -> str:
        """E.g. ``"wall-clock median"``: how outputs name the quantity."""
        return f"{self.clock}-clock {self.statistic}"

    def __str__(self) -> str:
        return self.name

    def of(self, timing: Any) -> float:
        """This statistic of a timing: a :class:`~.runner.TimingResult` (or an object with
        its ``median_ms``/``min_ms``) or a mapping with those keys (a table entry,
        :meth:`~.runner.TimingResult.summary`). The clock is the caller's to match."""
        field = f"{self.statistic}_ms"
        value = timing[field] if isinstance(timing, Mapping) else getattr(timing, field)
        return float(value)

    def to_json(self) -> dict[str, Any]:
        return {"clock": self.clock, "statistic": self.statistic}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyStatistic:
        return cls(clock=str(data.get("clock", "wall")),
                   statistic=str(data.get("statistic", "median")))


#: What users measure (``bench``'s headline, the demo's "measured"), and what every
#: calibration built by this release targets.
WALL_MEDIAN = LatencyStatistic("wall", "median")
