"""A searched network beside the space's hand-designed references: predicted and measured
latency as ratios to one reference (timed interleaved with it in several separate runs) and
in milliseconds, and stand-alone accuracy where known."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mobile_nas.cost.latency import measure
from mobile_nas.cost.latency.export import export_arch_onnx
from mobile_nas.jsonrecord import record_kwargs
from mobile_nas.report.run import ReportError
from mobile_nas.space import REFERENCE_ARCHS
from mobile_nas.space.architecture import Architecture
from mobile_nas.train.groundtruth import GroundTruthError, load_ground_truth

#: Stand-alone ground truth shipped in the source tree (absent from an installed wheel).
GROUND_TRUTH_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


@dataclass(frozen=True)
class ComparedNetwork:
    """One row of the comparison; ``ground_truth_val`` is None when the network is not in
    the space's stand-alone ground-truth set. ``measured_ratio`` is the network's latency
    over ``ratio_to``'s, the median over the timing runs of each run's ratio
    (``measured_ratios``); ``predicted_ratio`` the table's."""

    name: str
    arch: str
    predicted_ms: float | None
    measured_ms: float
    ground_truth_val: float | None
    ground_truth_test: float | None
    ratio_to: str | None = None
    predicted_ratio: float | None = None
    measured_ratio: float | None = None
    measured_ratios: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The fields, without the ratio fields of a record from before ratios (so an old
        record writes back byte for byte)."""
        d = asdict(self)
        if self.ratio_to is None and self.measured_ratio is None:
            for key in ("ratio_to", "predicted_ratio", "measured_ratio", "measured_ratios"):
                d.pop(key)
        else:
            d["measured_ratios"] = list(self.measured_ratios)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ComparedNetwork:
        """Reads :meth:`to_json` output back; raises :class:`ReportError` naming a bad
        key."""
        kw = record_kwargs(cls, data, what="compared network", error=ReportError)
        kw["measured_ratios"] = tuple(kw.get("measured_ratios") or ())
        return cls(**kw)


def ground_truth_accuracy(space_name: str, directory: Path = GROUND_TRUTH_DIR
                          ) -> dict[str, tuple[float, float]]:
    """{arch: (validation, test) accuracy of its seed-0 stand-alone run} from
    ``DIR/<space>_standalone`` (empty when there is none)."""
    stem = directory / f"{space_name}_standalone"
    if not stem.with_suffix(".json").is_file():
        return {}
    try:
        gt = load_ground_truth(stem)
    except GroundTruthError:
        return {}
    return {r.arch: (r.val_accuracy, r.test_accuracy) for r in gt.rows if r.seed == 0}


def compare_with_references(arch: Architecture, *, ratio_to: str | None = None,
                            predict_ms=None, repeats: int = 5, rounds: int = 40,
                            probe_shift: float | None = None) -> list[ComparedNetwork]:
    """``arch`` and every registered reference of its space, each exported as the latency
    tables time networks (:func:`~mobile_nas.cost.latency.export.export_arch_onnx`: batch 1,
    fp32), timed with onnxruntime (1 thread, wall clock) interleaved with the reference
    ``ratio_to`` (default: the space's first) in ``repeats`` separate runs; [] when the space
    has no reference. ``predict_ms``: the latency table's predictor, if any;
    ``probe_shift``: a probe's factor on ratios to ``ratio_to``
    (:attr:`~mobile_nas.cost.latency.probe.ReferenceProbe.shift`; predicted ratios are then
    against the reference where the probe placed it)."""
    space = arch.search_space
    refs = {name: space.decode(REFERENCE_ARCHS.get(name).arch)
            for name in REFERENCE_ARCHS.names() if REFERENCE_ARCHS.get(name).space == space.name}
    if not refs:
        return []
    ratio_to = ratio_to or next(iter(refs))
    anchor = refs[ratio_to]
    known = ground_truth_accuracy(space.name)
    others = {"searched": arch, **{n: a for n, a in refs.items() if n != ratio_to}}
    run = measure.measure_archs_anchored(list(others.values()), export_arch_onnx(anchor),
                                         repeats=repeats, rounds=rounds)
    fractions = {name: (run.fractions[i], tuple(r[i] for r in run.per_repeat))
                 for i, name in enumerate(others)}
    fractions[ratio_to] = (1.0, (1.0,) * repeats)
    ref_pred = None if predict_ms is None else float(predict_ms(anchor)) / (probe_shift or 1.0)
    rows = []
    for name, a in {"searched": arch, **refs}.items():
        val, test = known.get(a.to_string(), (None, None))
        pred = float(predict_ms(a)) if predict_ms is not None else None
        frac, per_run = fractions[name]
        rows.append(ComparedNetwork(
            name=name, arch=a.to_string(), predicted_ms=pred,
            measured_ms=frac * run.anchor_ms, ground_truth_val=val, ground_truth_test=test,
            ratio_to=ratio_to,
            predicted_ratio=None if pred is None or not ref_pred
            else 1.0 if name == ratio_to else pred / ref_pred,
            measured_ratio=frac, measured_ratios=per_run))
    return rows
