"""Evaluator: architecture → validation accuracy, and the tabular evaluator.

Evaluators never see test data: accuracy is measured on a validation split held out from the
training images (or looked up in a table built that way).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mobile_nas.atomic import atomic_write_json
from mobile_nas.errors import MobileNasError
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace


class EvaluatorError(MobileNasError):
    """An evaluator that cannot be built or cannot score an architecture."""


class Evaluator(ABC):
    """Scores architectures of one space.

    ``evaluate(arch)`` returns the validation accuracy in [0, 1] (fraction, not percent).
    Implementations should be deterministic for a given architecture (same weights, same
    calibration batches) so that repeated trials agree; they may cache results.
    """

    def __init__(self, *, space: SearchSpace) -> None:
        self.space = space

    @abstractmethod
    def evaluate(self, arch: Architecture) -> float:
        """Validation accuracy of ``arch`` in [0, 1]."""

    def describe(self) -> dict[str, Any]:
        """JSON-ready description recorded in the study."""
        return {"name": type(self).__name__}


TABLE_SCHEMA_VERSION = 1


class TableEvaluator(Evaluator):
    """Looks accuracies up in a table (``arch string → accuracy``).

    For benchmarks (a frozen supernet's accuracies cached per architecture) and tabular
    benchmarks. An architecture missing from the table raises :class:`EvaluatorError`, unless
    a ``fallback`` evaluator is given, whose results are then added to the table.
    """

    def __init__(self, *, space: SearchSpace, table: Mapping[str, float],
                 fallback: Evaluator | None = None) -> None:
        super().__init__(space=space)
        self.table: dict[str, float] = {str(k): float(v) for k, v in table.items()}
        self.fallback = fallback

    def evaluate(self, arch: Architecture) -> float:
        key = arch.to_string()
        if key not in self.table:
            if self.fallback is None:
                raise EvaluatorError(f"architecture {key!r} is not in the accuracy table")
            self.table[key] = float(self.fallback.evaluate(arch))
        return self.table[key]

    # -- files ---------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"schema_version": TABLE_SCHEMA_VERSION, "space": self.space.name,
                "accuracy": dict(sorted(self.table.items()))}

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.to_json(), indent=None)

    @classmethod
    def load(cls, path: str | Path, *, space: SearchSpace,
             fallback: Evaluator | None = None) -> TableEvaluator:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise EvaluatorError(f"cannot read accuracy table {str(path)!r}: {exc}") from None
        if not isinstance(data, dict) or data.get("schema_version") != TABLE_SCHEMA_VERSION:
            raise EvaluatorError(f"accuracy table {str(path)!r} lacks schema_version "
                                 f"{TABLE_SCHEMA_VERSION}")
        if data.get("space") != space.name:
            raise EvaluatorError(f"accuracy table {str(path)!r} is for space "
                                 f"{data.get('space')!r}, not {space.name!r}")
        return cls(space=space, table=data["accuracy"], fallback=fallback)

    def describe(self) -> dict[str, Any]:
        return {"name": "table", "entries": len(self.table)}
