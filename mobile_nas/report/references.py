"""A searched network beside the space's hand-designed references: predicted and measured
latency (one interleaved onnxruntime run) and stand-alone accuracy where known."""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mobile_nas.space.architecture import Architecture

#: Stand-alone ground truth shipped in the source tree (absent from an installed wheel).
GROUND_TRUTH_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


@dataclass(frozen=True)
class ComparedNetwork:
    """One row of the comparison; ``ground_truth_val`` is None when the network is not in
    the space's stand-alone ground-truth set."""

    name: str
    arch: str
    predicted_ms: float | None
    measured_ms: float
    ground_truth_val: float | None
    ground_truth_test: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComparedNetwork:
        """Reads :meth:`to_json` output back; raises :class:`ReportError` naming a bad
        key."""
        from mobile_nas.jsonrecord import record_kwargs
        from mobile_nas.report.run import ReportError

        return cls(**record_kwargs(cls, data, what="compared network", error=ReportError))


def ground_truth_accuracy(space_name: str, directory: Path = GROUND_TRUTH_DIR
                          ) -> dict[str, tuple[float, float]]:
    """{arch: (validation, test) accuracy of its seed-0 stand-alone run} from
    ``DIR/<space>_standalone`` (empty when there is none)."""
    from mobile_nas.train.groundtruth import GroundTruthError, load_ground_truth

    stem = directory / f"{space_name}_standalone"
    if not stem.with_suffix(".json").is_file():
        return {}
    try:
        gt = load_ground_truth(stem)
    except GroundTruthError:
        return {}
    return {r.arch: (r.val_accuracy, r.test_accuracy) for r in gt.rows if r.seed == 0}


def compare_with_references(arch: Architecture, onnx_path: str | os.PathLike, *,
                            predict_ms=None, runs: int = 300) -> list[ComparedNetwork]:
    """``arch`` (exported at ``onnx_path``) and every registered reference of its space,
    timed together (batch 1, 1 thread, wall-clock median, interleaved); [] when the space has
    no reference. ``predict_ms``: the latency table's predictor, if any."""
    from mobile_nas.export.deploy import time_models
    from mobile_nas.export.onnx_export import export_onnx_bytes
    from mobile_nas.models import build_model
    from mobile_nas.space import REFERENCE_ARCHS

    space = arch.search_space
    refs = {name: space.decode(REFERENCE_ARCHS.get(name).arch)
            for name in REFERENCE_ARCHS.names() if REFERENCE_ARCHS.get(name).space == space.name}
    if not refs:
        return []
    known = ground_truth_accuracy(space.name)
    with tempfile.TemporaryDirectory(prefix="mobile-nas-refs-") as tmp:
        paths = {"searched": str(onnx_path)}
        for name, ref in refs.items():
            path = Path(tmp) / f"{name}.onnx"  # latency does not depend on the weights
            path.write_bytes(export_onnx_bytes(build_model(ref).eval(), space.input_shape))
            paths[name] = str(path)
        timing = time_models(paths, runs=runs, threads=1)
    rows = []
    for name, a in {"searched": arch, **refs}.items():
        val, test = known.get(a.to_string(), (None, None))
        rows.append(ComparedNetwork(
            name=name, arch=a.to_string(),
            predicted_ms=float(predict_ms(a)) if predict_ms is not None else None,
            measured_ms=timing[name]["p50_ms"], ground_truth_val=val, ground_truth_test=test))
    return rows
