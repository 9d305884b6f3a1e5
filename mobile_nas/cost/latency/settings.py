"""How layers are timed for a table: :class:`ProfileSettings`, recorded in its metadata.

Kept free of torch and onnxruntime imports, so that checking a table against a request
(:mod:`.requirements`) stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.statistic import CLOCKS, STATISTICS, LatencyStatistic

#: The ONNX opset of every export unless a caller asks for another (the value of
#: :data:`mobile_nas.torch_onnx.DEFAULT_OPSET`, which imports torch; a test keeps them equal).
DEFAULT_OPSET = 17
#: Precisions a table can be asked for; ``lut build`` times ``BUILDABLE_PRECISIONS`` (int8:
#: every layer and calibration network as its INT8 QDQ export, see :mod:`.precision`).
PRECISIONS = ("fp32", "int8")
BUILDABLE_PRECISIONS = ("fp32", "int8")


@dataclass(frozen=True)
class ProfileSettings:
    """How layers are timed; recorded in the table's metadata."""

    threads: int = 1
    provider: str = "CPUExecutionProvider"
    opt_level: str = "all"
    opset: int = DEFAULT_OPSET
    warmup: int = 5
    # 20 x 5 runs of each key over chunks of 128 seeded-random keys: entries of two fmnist28
    # builds in a row then agree within 1.3% (mean), where 10 x 3 over 32 sorted keys
    # agreed within 7-9% (2026-12-07, benchmarks/results/latency_prediction.md)
    rounds: int = 20
    runs_per_round: int = 5
    chunk: int = 128
    clock: str = "wall"
    statistic: str = "median"
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.clock not in CLOCKS or self.statistic not in STATISTICS:
            raise LatencyTableError(f"clock must be one of {', '.join(CLOCKS)} and statistic "
                                    f"one of {', '.join(STATISTICS)}, got {self.clock!r} and "
                                    f"{self.statistic!r}")
        if self.clock == "cpu" and self.threads != 1:
            raise LatencyTableError(f"clock 'cpu' measures one thread; it needs threads=1, "
                                    f"not {self.threads}")
        if self.precision not in BUILDABLE_PRECISIONS:
            raise LatencyTableError(f"precision {self.precision!r} cannot be profiled; "
                                    f"buildable: {', '.join(BUILDABLE_PRECISIONS)}")
        if min(self.threads, self.rounds, self.runs_per_round, self.chunk) < 1 \
                or self.warmup < 0:
            raise LatencyTableError("threads, rounds, runs_per_round and chunk must be >= 1 "
                                    "and warmup >= 0")

    @property
    def layer_statistic(self) -> LatencyStatistic:
        return LatencyStatistic(self.clock, self.statistic)

    def metadata(self) -> dict[str, Any]:
        return {"provider": self.provider, "threads": self.threads, "opt_level": self.opt_level,
                "clock": self.clock, "statistic": self.statistic, "precision": self.precision,
                "opset": self.opset, "warmup": self.warmup, "rounds": self.rounds,
                "runs_per_round": self.runs_per_round}


#: Settings that must match for ``resume`` to extend an existing table (a table without a
#: recorded value has the default: tables before ``precision`` was recorded are fp32).
RESUME_FIELDS = ("provider", "threads", "opt_level", "opset", "clock", "statistic", "rounds",
                 "runs_per_round", "precision")
DEFAULTS = ProfileSettings()
