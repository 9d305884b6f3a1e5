"""``RUN_DIR/deploy.json``: what ``mobile-nas demo`` did with a search's best architecture
(trained it, exported and verified it in both profiles, timed it beside the hand-designed
references), as one typed record that the demo writes and ``mobile-nas report`` reads.

Format (``schema_version`` 1, the only one so far; the files written since the demo first
wrote ``deploy.json`` are this format)::

    {"schema_version": 1, "arch": "...", "space": "fmnist28", "macs": 2086552,
     "params": 146482,
     "train": {"path", "epochs", "train_images", "seconds", "val_accuracy", "test_accuracy"},
     "export": ExportReport.to_json(),          # server profile (dynamic batch)
     "export_mobile": ExportReport.to_json(),   # mobile profile (batch 1, .ort files)
     "references": [ComparedNetwork.to_json(), ...],
     "stage_seconds": {"search": s, "train": s, "export": s[, "report": s]},
     "total_seconds": s,                        # absent until the report is written
     "predicted_statistic": "cpu-clock min",    # what every predicted_* predicts, and
     "latency_table": "/path/fmnist28.json",    # from which table (both absent in files
                                                # written before they were recorded)
     "predicted_int8_ms": 0.21,                 # the INT8 model's latency as the space's
     "predicted_int8_statistic": "wall-clock median",  # shipped INT8 table predicts it,
     "int8_latency_table": "/path/fmnist28_int8.json"} # (absent without one or an INT8 model)

The measured latencies (``export.timing``, ``references[].measured_ms``) are wall-clock
medians (:func:`~mobile_nas.export.deploy.time_models`); the predicted ones
(``export.predicted_latency_ms``, ``references[].predicted_ms``) are what the latency table
predicts, named by ``predicted_statistic``: the wall-clock median for a table built by this
release, the ``cpu-clock min`` for the legacy shipped tables until they are rebuilt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_nas.atomic import atomic_write_json
from mobile_nas.errors import MobileNasError
from mobile_nas.export.deploy import ExportReport
from mobile_nas.jsonrecord import record_kwargs
from mobile_nas.report.references import ComparedNetwork
from mobile_nas.report.run import ReportError

DEPLOY_FILE = "deploy.json"
DEPLOY_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TrainedModel:
    """The stand-alone training of the architecture: checkpoint path, epochs, images,
    seconds, validation and test accuracy (fractions)."""

    path: str
    epochs: int
    train_images: int
    seconds: float
    val_accuracy: float
    test_accuracy: float

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "epochs": self.epochs, "train_images": self.train_images,
                "seconds": self.seconds, "val_accuracy": self.val_accuracy,
                "test_accuracy": self.test_accuracy}


@dataclass(frozen=True)
class DeployRecord:
    """One searched architecture carried to deployables (see the module docstring).
    ``stage_seconds``: wall time of each pipeline stage; ``total_seconds`` is None until the
    pipeline has finished. ``predicted_statistic`` (e.g. ``"cpu-clock min"``) and
    ``latency_table`` (its path) say what the predicted latencies are and where they come
    from; None in records written before they were recorded."""

    arch: str
    space: str
    macs: int
    params: int
    train: TrainedModel
    export: ExportReport
    export_mobile: ExportReport
    references: tuple[ComparedNetwork, ...]
    stage_seconds: dict[str, float]
    total_seconds: float | None = None
    predicted_statistic: str | None = None
    latency_table: str | None = None
    predicted_int8_ms: float | None = None
    predicted_int8_statistic: str | None = None
    int8_latency_table: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": DEPLOY_SCHEMA_VERSION, "arch": self.arch, "space": self.space,
            "macs": self.macs, "params": self.params, "train": self.train.to_json(),
            "export": self.export.to_json(), "export_mobile": self.export_mobile.to_json(),
            "references": [c.to_json() for c in self.references],
            "stage_seconds": dict(self.stage_seconds)}
        for key in ("total_seconds", "predicted_statistic", "latency_table",
                    "predicted_int8_ms", "predicted_int8_statistic", "int8_latency_table"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data

    @classmethod
    def from_json(cls, data: Any, *, source: str = DEPLOY_FILE) -> DeployRecord:
        """Reads :meth:`to_json` output (any schema version this release knows). Raises
        :class:`ReportError`, one line starting with ``source``, for an unknown schema
        version or a missing, unknown or mistyped key."""
        if not isinstance(data, dict):
            raise ReportError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version != DEPLOY_SCHEMA_VERSION:
            raise ReportError(f"{source}: schema_version {version!r} is not one this release "
                              f"reads ({DEPLOY_SCHEMA_VERSION}); written by a newer "
                              f"mobile-nas, or not a deploy.json")
        body = {k: v for k, v in data.items() if k != "schema_version"}
        try:
            kw = record_kwargs(cls, body, what="deploy record", error=ReportError)
            kw["train"] = TrainedModel(**record_kwargs(
                TrainedModel, kw["train"], what="train", error=ReportError))
            kw["export"] = ExportReport.from_json(kw["export"])
            kw["export_mobile"] = ExportReport.from_json(kw["export_mobile"])
            if not isinstance(kw["references"], list):
                raise ReportError("'references' must be a list")
            kw["references"] = tuple(ComparedNetwork.from_json(c) for c in kw["references"])
            stages = kw["stage_seconds"]
            if not (isinstance(stages, dict) and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in stages.values())):
                raise ReportError("'stage_seconds' must map stage names to seconds")
        except MobileNasError as exc:
            raise ReportError(f"{source}: {exc}") from None
        return cls(**kw)

    def save(self, path: str | os.PathLike) -> None:
        """Writes :meth:`to_json` atomically."""
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> DeployRecord:
        """Reads a deploy.json; raises :class:`ReportError` (one line naming the file) when
        it cannot be read or is not a deploy record this release knows."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ReportError(f"cannot read {str(path)!r}: {exc}") from None
        return cls.from_json(data, source=repr(str(path)))
