"""Latency relative to a reference network: targets such as ``0.9xfmnist28_mnasnet``, and
candidates timed against their reference in one interleaved run.

A machine's milliseconds drift (speed moving 1.4x within minutes on a shared VM; phones
throttle), while the ratio of two networks timed interleaved in one run holds (DESIGN.md,
"Latency that holds"). So a target may name a reference, and a search ends by measuring its
finalists against it:

* :func:`parse_latency_target` reads ``REF`` or ``<factor>xREF``;
* :func:`resolve_latency_target` turns it into milliseconds of a predictor (the latency
  table in use); :func:`reference_for_target_ms` gives a plain millisecond target the
  space's first reference, as a factor of it;
* :func:`time_against_reference` times candidates and the reference interleaved, in
  ``repeats`` separate runs, as ratios of the reference;
* :func:`select_finalist` names the most accurate candidate that measured within the target.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_nas.cost.latency import measure
from mobile_nas.cost.latency.errors import LatencyTargetError, MeasureError
from mobile_nas.cost.latency.export import DEFAULT_OPSET, export_arch_onnx
from mobile_nas.cost.latency.runner import time_interleaved
from mobile_nas.errors import ArchError
from mobile_nas.space import get_space
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.reference import REFERENCE_ARCHS

if TYPE_CHECKING:
    from mobile_nas.cost.latency.probe import ReferenceProbe
    from mobile_nas.cost.latency.runner import Session

#: Largest factor a target may take (``10xREF``: ten times the reference's latency).
MAX_FACTOR = 10.0
#: What a reference may be (:attr:`TargetSpec.kind`).
REFERENCE_KINDS = ("name", "arch", "onnx")
_FORMS = ("REF or FACTORxREF (e.g. fmnist28_mnasnet, 0.9xfmnist28_mnasnet); REF is a "
          "reference architecture name, an arch string of the space, or an ONNX file "
          "exported by mobile-nas")
# a factor starts with a digit, a sign or a dot; arch strings and reference names never do
_FACTOR_FORM = re.compile(r"^\s*(?P<factor>[-+.0-9][-+.0-9eE]*)\s*[xX]\s*(?P<ref>.*)$")


# -- targets -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TargetSpec:
    """A parsed latency target: ``factor`` times the latency of ``reference``.

    ``kind`` says what ``reference`` is: ``name`` (of :data:`REFERENCE_ARCHS
    <mobile_nas.space.reference.REFERENCE_ARCHS>`), ``onnx`` (a file whose
    ``metadata_props`` key ``arch`` holds the arch string) or ``arch`` (an arch string,
    decoded by the space at :func:`resolve_latency_target`).
    """

    text: str
    factor: float
    reference: str
    kind: str


@dataclass(frozen=True)
class ResolvedTarget:
    """A target in milliseconds of one predictor: ``target_ms = factor * reference_ms``.
    ``reference_name`` is the reference's name, ONNX file or arch string, as given;
    ``reference_predicted_ms`` the predictor's ms of it; ``probe`` (:meth:`with_probe`)
    places the reference by networks timed with it now, and then ``reference_ms`` is the
    probe's, not the prediction."""

    reference_name: str
    reference_arch: Architecture
    factor: float
    target_ms: float
    reference_predicted_ms: float
    probe: ReferenceProbe | None = None

    @property
    def reference_ms(self) -> float:
        """The reference's latency that ratios and the target are taken against."""
        return self.reference_predicted_ms if self.probe is None else self.probe.reference_ms

    def with_probe(self, probe: ReferenceProbe) -> ResolvedTarget:
        """This target with the reference placed by ``probe`` (the target moves with it)."""
        return dataclasses.replace(self, probe=probe, target_ms=self.factor * probe.reference_ms)

    def describe(self, source: str) -> str:
        """``target 0.9 x fmnist28_mnasnet = 0.123 ms on SOURCE`` (``source``: the table)."""
        probed = "" if self.probe is None else " (reference probed on this machine)"
        return (f"target {self.factor:g} x {self.reference_name} = {self.target_ms:.3f} ms "
                f"on {source}{probed}")

    def to_json(self) -> dict[str, Any]:
        out = {"reference": self.reference_name, "reference_arch": str(self.reference_arch),
               "factor": self.factor, "target_ms": self.target_ms,
               "reference_predicted_ms": self.reference_predicted_ms}
        if self.probe is not None:
            out |= {"reference_ms": self.reference_ms, "probe": self.probe.to_json()}
        return out


def parse_latency_target(text: str) -> TargetSpec:
    """``REF`` (factor 1) or ``<factor>xREF`` (``0.9xfmnist28_mnasnet``, ``1x model.onnx``),
    with ``0 < factor <= MAX_FACTOR``. A registered reference name or an existing file is
    read whole (no factor is split off it). Raises :class:`LatencyTargetError`."""
    raw = text.strip()
    factor, ref = 1.0, raw
    if raw not in REFERENCE_ARCHS and not _is_file(raw):
        m = _FACTOR_FORM.match(raw)
        if m:
            ref = m.group("ref").strip()
            try:
                factor = float(m.group("factor"))
            except ValueError:
                factor = math.nan
            if not (math.isfinite(factor) and 0 < factor <= MAX_FACTOR):
                raise LatencyTargetError(
                    text=text, what="factor", value=m.group("factor"),
                    problem="is not a number > 0 and <= 10",
                    allowed=f"a factor > 0 and <= {MAX_FACTOR:g} before 'x' "
                            f"(0.9xREF: 10% faster than REF)")
    if not ref:
        raise LatencyTargetError(text=text, what="reference", value=ref, problem="is empty",
                                 allowed=_FORMS)
    kind = ("name" if ref in REFERENCE_ARCHS else
            "onnx" if ref.lower().endswith(".onnx") or _is_file(ref) else "arch")
    return TargetSpec(text=text, factor=factor, reference=ref, kind=kind)


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long for a path, a NUL byte
        return False


def space_references(space_name: str) -> list[str]:
    """Names of the reference architectures registered in ``space_name``, sorted."""
    return [n for n in REFERENCE_ARCHS if REFERENCE_ARCHS.get(n).space == space_name]


def resolve_latency_target(spec: TargetSpec, space_name: str,
                           predict_ms: Callable[[Architecture], float]) -> ResolvedTarget:
    """``spec``'s reference as an architecture of ``space_name`` and the target in the
    milliseconds of ``predict_ms`` (e.g. a latency table's predictor). A reference of another
    space, an ONNX file without mobile-nas metadata or an arch string the space cannot decode
    raise :class:`LatencyTargetError`; ``predict_ms``'s own errors pass through."""
    space = get_space(space_name)
    names = space_references(space.name)
    allowed = (f"a reference of space {space.name!r} ({', '.join(names) or 'none registered'}), "
               f"an arch string of it, or an ONNX file of it exported by mobile-nas")

    def refuse(what: str, value: object, problem: str) -> LatencyTargetError:
        return LatencyTargetError(text=spec.text, what=what, value=value, problem=problem,
                                  allowed=allowed)

    owner: str | None
    if spec.kind == "name":
        ref = REFERENCE_ARCHS.get(spec.reference)
        if ref.space != space.name:
            raise refuse("reference", spec.reference,
                         f"belongs to space {ref.space!r}, not {space.name!r}")
        text, owner = ref.arch, ref.space
    elif spec.kind == "onnx":
        text, owner = _onnx_arch(spec, refuse)
        if owner is not None and owner != space.name:
            raise refuse("ONNX file", spec.reference,
                         f"holds a network of space {owner!r}, not {space.name!r}")
    else:
        text, owner = spec.reference, None
    try:
        arch = space.decode(text)
    except ArchError as exc:
        if spec.kind == "arch":
            raise refuse("reference", spec.reference,
                         f"is neither a reference name nor an arch string of space "
                         f"{space.name!r} ({exc})") from None
        raise refuse("ONNX file", spec.reference,
                     f"holds an arch string space {space.name!r} cannot decode ({exc})"
                     ) from None
    predicted = float(predict_ms(arch))
    return ResolvedTarget(reference_name=spec.reference, reference_arch=arch,
                          factor=spec.factor, target_ms=spec.factor * predicted,
                          reference_predicted_ms=predicted)


def _onnx_arch(spec: TargetSpec, refuse: Callable[[str, object, str], LatencyTargetError]
               ) -> tuple[str, str | None]:
    """(arch string, space or None) from the ``metadata_props`` of the ONNX file of ``spec``."""
    if not _is_file(spec.reference):
        raise refuse("ONNX file", spec.reference, "does not exist")
    import onnx  # cost/ reads the file itself: it never imports mobile_nas.export

    try:
        model = onnx.load(spec.reference, load_external_data=False)
        meta = {p.key: p.value for p in model.metadata_props}
    except Exception as exc:  # noqa: BLE001  (onnx raises protobuf's and its own errors)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise refuse("ONNX file", spec.reference, f"cannot be read as ONNX ({first})") from None
    if not meta.get("arch"):
        raise refuse("ONNX file", spec.reference,
                     "has no 'arch' in its metadata_props (not exported by mobile-nas)")
    return meta["arch"], meta.get("space") or None


@dataclass(frozen=True)
class ModelVsReference:
    """An ONNX model timed against a reference (:func:`compare_model`): ``ratio`` is the
    median over ``repeats`` separate interleaved runs of the model's median over the
    reference's (``ratios``: each run's); ms of both on this machine now; ``noise_pct`` the
    mean distance of a run's ratio from the median; ``target_factor`` the factor of a
    ``FxREF`` form (1 for ``REF``)."""

    reference: str
    target_factor: float
    ratio: float
    ratios: tuple[float, ...]
    model_ms: float
    reference_ms: float
    noise_pct: float
    load_avg: tuple[float, float, float] | None

    @property
    def within_target(self) -> bool:
        """Within the target by more than the runs' noise, the finalists' rule
        (:func:`select_finalist`)."""
        return self.ratio * (1 + self.noise_pct / 100) <= self.target_factor

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "target_factor": self.target_factor,
                "ratio": self.ratio, "ratios": list(self.ratios), "model_ms": self.model_ms,
                "reference_ms": self.reference_ms, "noise_pct": self.noise_pct,
                "within_target": self.within_target,
                "load_avg": list(self.load_avg) if self.load_avg else None}


def reference_onnx(spec: TargetSpec, space_name: str | None = None) -> bytes | str:
    """The model a target's reference names: its ONNX file as given, or the export (as the
    latency tables time networks) of a reference architecture or of an arch string of
    ``space_name`` (needed for an arch string). Raises :class:`LatencyTargetError`."""
    if spec.kind == "onnx":
        if not _is_file(spec.reference):
            raise LatencyTargetError(text=spec.text, what="ONNX file", value=spec.reference,
                                     problem="does not exist", allowed=_FORMS)
        return spec.reference
    if spec.kind == "name":
        ref = REFERENCE_ARCHS.get(spec.reference)
        return export_arch_onnx(Architecture.from_string(ref.arch, ref.space))
    if space_name is None:
        raise LatencyTargetError(text=spec.text, what="reference", value=spec.reference,
                                 problem="is an arch string without a space",
                                 allowed="a reference name, an ONNX file, or an arch string "
                                         "with its space")
    try:
        return export_arch_onnx(get_space(space_name).decode(spec.reference))
    except ArchError as exc:
        raise LatencyTargetError(text=spec.text, what="reference", value=spec.reference,
                                 problem=f"is not an arch string of {space_name!r} ({exc})",
                                 allowed=_FORMS) from None


def compare_model(model: bytes | str | os.PathLike[str], spec: TargetSpec, *,
                  space_name: str | None = None, repeats: int = 3, rounds: int = 20,
                  threads: int = 1, provider: str = "CPUExecutionProvider",
                  opt_level: str = "all") -> ModelVsReference:
    """Times ``model`` against the reference of ``spec`` (:func:`reference_onnx`) in
    ``repeats`` separate interleaved runs (:func:`~.measure.measure_models_anchored`)."""
    if repeats < 2:
        raise MeasureError(f"repeats must be >= 2 (one run has no noise to compare against), "
                           f"got {repeats}")
    run = measure.measure_models_anchored([model], reference_onnx(spec, space_name),
                                          repeats=repeats, rounds=rounds, threads=threads,
                                          provider=provider, opt_level=opt_level)
    return ModelVsReference(reference=spec.reference, target_factor=spec.factor,
                            ratio=run.fractions[0],
                            ratios=tuple(r[0] for r in run.per_repeat),
                            model_ms=run.measured_ms[0], reference_ms=run.anchor_ms,
                            noise_pct=run.retest_pct, load_avg=_load_avg())


def reference_for_target_ms(target_ms: float, space_name: str,
                            predict_ms: Callable[[Architecture], float]
                            ) -> ResolvedTarget | None:
    """A millisecond target as a factor of the space's first reference architecture (in
    :func:`space_references` order): ``factor = target_ms / predicted reference ms``; None
    for a space without references."""
    names = space_references(space_name)
    if not names:
        return None
    ref = REFERENCE_ARCHS.get(names[0])
    arch = Architecture.from_string(ref.arch, ref.space)
    predicted = float(predict_ms(arch))
    return ResolvedTarget(reference_name=ref.name, reference_arch=arch,
                          factor=target_ms / predicted, target_ms=target_ms,
                          reference_predicted_ms=predicted)


# -- timing against the reference -------------------------------------------------------------
@dataclass(frozen=True)
class CandidateTiming:
    """One candidate against the reference: ``ratios`` of its median to the reference's
    median in each repeat, ``ratio`` their median, ``median_ms`` the median of its per-repeat
    medians (milliseconds of this machine, now)."""

    arch: Architecture
    ratio: float
    ratios: tuple[float, ...]
    median_ms: float

    def to_json(self) -> dict[str, Any]:
        return {"arch": str(self.arch), "ratio": self.ratio, "ratios": list(self.ratios),
                "median_ms": self.median_ms}


@dataclass(frozen=True)
class RelativeTiming:
    """Candidates timed against a reference in ``repeats`` separate interleaved runs.

    ``reference_ms``: the reference's median in each repeat. ``noise_pct``: the run's
    test-retest noise floor, the median over candidates of the largest deviation of a
    repeat's ratio from the candidate's ratio, in percent. ``load_avg``: the 1, 5 and 15
    minute load averages when the timing ended (None where the OS has none). The rest is
    how it was timed (wall clock).
    """

    reference: Architecture
    candidates: tuple[CandidateTiming, ...]
    reference_ms: tuple[float, ...]
    noise_pct: float
    load_avg: tuple[float, float, float] | None
    repeats: int
    rounds: int
    runs_per_round: int
    threads: int
    provider: str
    precision: str
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"reference": str(self.reference), "reference_ms": list(self.reference_ms),
                "candidates": [c.to_json() for c in self.candidates],
                "noise_pct": self.noise_pct,
                "load_avg": list(self.load_avg) if self.load_avg else None,
                "repeats": self.repeats, "rounds": self.rounds,
                "runs_per_round": self.runs_per_round, "threads": self.threads,
                "provider": self.provider, "precision": self.precision, "clock": "wall",
                "seconds": round(self.seconds, 2)}


def onnx_session_factory(*, threads: int = 1, provider: str = "CPUExecutionProvider",
                         opt_level: str = "all", precision: str = "fp32",
                         opset: int | None = None) -> Callable[[Architecture], Session]:
    """Sessions of architectures, each exported once (:func:`~.export.export_arch_onnx` at
    ``precision``) and opened by :func:`~.measure.load_session`."""
    exported: dict[Architecture, bytes] = {}

    def make(arch: Architecture) -> Session:
        if arch not in exported:
            exported[arch] = export_arch_onnx(arch, opset=opset or DEFAULT_OPSET,
                                              precision=precision)
        return measure.load_session(exported[arch], threads=threads, provider=provider,
                                    opt_level=opt_level)

    return make


def time_against_reference(candidates: Sequence[Architecture], reference: Architecture, *,
                           repeats: int = 3, rounds: int = 20, runs_per_round: int = 5,
                           warmup: int = 5, threads: int = 1,
                           provider: str = "CPUExecutionProvider", opt_level: str = "all",
                           precision: str = "fp32", opset: int | None = None, seed: int = 0,
                           session_factory: Callable[[Architecture], Session] | None = None,
                           timer: Callable[[], int] | None = None) -> RelativeTiming:
    """Times ``candidates`` and ``reference`` interleaved
    (:func:`~mobile_nas.cost.latency.runner.time_interleaved`) in ``repeats`` separate runs
    (seeds ``seed``, ``seed + 1``, ...); a repeat's ratio is the candidate's median over the
    reference's median in that repeat (see :class:`RelativeTiming`).

    Every network is exported and opened once (:func:`onnx_session_factory`, or
    ``session_factory``: fake sessions in tests); ``timer`` replaces the wall clock (a fake
    nanosecond counter). Raises :class:`MeasureError` for bad settings (``repeats >= 2``:
    one repeat has no noise floor).
    """
    if not candidates:
        raise MeasureError("no candidates to time against the reference")
    if repeats < 2 or rounds < 1 or runs_per_round < 1 or warmup < 0:
        raise MeasureError(f"repeats must be >= 2 (the noise floor compares repeats), rounds "
                           f"and runs_per_round >= 1, warmup >= 0; got {repeats}, {rounds}, "
                           f"{runs_per_round}, {warmup}")
    make = session_factory or onnx_session_factory(threads=threads, provider=provider,
                                                   opt_level=opt_level, precision=precision,
                                                   opset=opset)
    start = time.monotonic()
    sessions = {"reference": make(reference)}
    sessions.update({f"candidate{i}": make(a) for i, a in enumerate(candidates)})
    medians: list[dict[str, float]] = []
    for r in range(repeats):
        times = time_interleaved(sessions, warmup=warmup, rounds=rounds,
                                 runs_per_round=runs_per_round, seed=seed + r, timer=timer)
        medians.append({k: float(statistics.median(v)) for k, v in times.items()})
    reference_ms = tuple(m["reference"] for m in medians)
    rows = []
    for i, arch in enumerate(candidates):
        key = f"candidate{i}"
        ratios = tuple(m[key] / m["reference"] for m in medians)
        rows.append(CandidateTiming(arch=arch, ratio=float(statistics.median(ratios)),
                                    ratios=ratios,
                                    median_ms=float(statistics.median(m[key] for m in medians))))
    return RelativeTiming(reference=reference, candidates=tuple(rows),
                          reference_ms=reference_ms, noise_pct=noise_floor_pct(rows),
                          load_avg=_load_avg(), repeats=repeats, rounds=rounds,
                          runs_per_round=runs_per_round, threads=threads, provider=provider,
                          precision=precision, seconds=time.monotonic() - start)


def noise_floor_pct(rows: Sequence[CandidateTiming]) -> float:
    """The median over candidates of ``max |ratio_repeat / ratio - 1|``, in percent: how far
    one repeat of this run strays from the run's answer."""
    return float(statistics.median(max(abs(x / c.ratio - 1) for x in c.ratios) * 100
                                   for c in rows))


def _load_avg() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):  # not on Windows
        return None
    return (round(one, 2), round(five, 2), round(fifteen, 2))


# -- choosing the finalist ---------------------------------------------------------------------
@dataclass(frozen=True)
class FinalistRow:
    """A candidate to choose from: its accuracy (or score), its predicted and measured
    latency as ratios of the reference, and its measured milliseconds."""

    arch: str
    accuracy: float
    predicted_ratio: float
    measured_ratio: float
    measured_ms: float | None = None


@dataclass(frozen=True)
class FinalistVerdict:
    """Why a row was chosen or not. ``margin_pct``: how far its measured ratio is from the
    target, in percent of the target (negative: faster than the target); ``within_noise``:
    ``|margin_pct| <= noise_pct``, a verdict a rerun might flip."""

    row: FinalistRow
    accepted: bool
    chosen: bool
    margin_pct: float
    within_noise: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        r = self.row
        return {"arch": r.arch, "accuracy": r.accuracy, "predicted_ratio": r.predicted_ratio,
                "measured_ratio": r.measured_ratio, "measured_ms": r.measured_ms,
                "within_target": self.accepted, "chosen": self.chosen,
                "margin_pct": round(self.margin_pct, 2), "within_noise": self.within_noise,
                "reason": self.reason}


@dataclass(frozen=True)
class FinalistChoice:
    """The result of :func:`select_finalist`: ``chosen`` (None when no row measured within
    the target) and a verdict per row, in the rows' order."""

    chosen: FinalistRow | None
    target_factor: float
    noise_pct: float
    verdicts: tuple[FinalistVerdict, ...]

    def summary(self) -> str:
        """One line: the pick and its margin, or that none measured within the target."""
        noise = f"run noise ±{self.noise_pct:.1f}%"
        if self.chosen is None:
            closest = min(v.row.measured_ratio for v in self.verdicts)
            return (f"no finalist measured within the target {self.target_factor:.3g}x the "
                    f"reference by more than the noise (closest {closest:.3f}x; {noise})")
        v = next(v for v in self.verdicts if v.chosen)
        n_ok = sum(v.accepted for v in self.verdicts)
        return (f"finalist {v.row.arch}: measured {v.row.measured_ratio:.3f}x the reference, "
                f"target {self.target_factor:.3g}x ({v.margin_pct:+.1f}%; {noise}); "
                f"{n_ok} of {len(self.verdicts)} measured within the target by more than "
                f"the noise")

    def to_json(self) -> dict[str, Any]:
        return {"target_factor": self.target_factor, "noise_pct": self.noise_pct,
                "chosen": self.chosen.arch if self.chosen else None,
                "candidates": [v.to_json() for v in self.verdicts]}


def select_finalist(rows: Sequence[FinalistRow], target_factor: float,
                    noise_pct: float) -> FinalistChoice:
    """The most accurate row that measured within the target with a margin of the run's
    noise: ``measured_ratio * (1 + noise_pct / 100) <= target_factor`` (ties: the faster
    one, then the earlier row). A row over that line but not over the target itself is
    ``within_noise``: a rerun could put it on either side, so it is not taken.
    """
    line = target_factor / (1 + noise_pct / 100)
    scored = []
    for r in rows:
        margin = (r.measured_ratio / target_factor - 1) * 100
        scored.append((r, r.measured_ratio <= line, margin,
                       line < r.measured_ratio <= target_factor * (1 + noise_pct / 100)))
    within = [i for i, (_, ok, _, _) in enumerate(scored) if ok]
    best = max(within, key=lambda i: (rows[i].accuracy, -rows[i].measured_ratio, -i),
               default=None)
    verdicts = []
    for i, (r, ok, margin, noisy) in enumerate(scored):
        if i == best:
            reason = "chosen: the most accurate that measured within the target"
        elif ok:
            reason = "within the target, but less accurate than the chosen one"
        elif noisy:
            reason = (f"measured {r.measured_ratio:.3f}x the reference, {margin:+.1f}% from "
                      f"the target {target_factor:.3g}x: within the run's noise of "
                      f"±{noise_pct:.1f}%, not taken")
        else:
            reason = (f"measured {r.measured_ratio:.3f}x the reference, over the target "
                      f"{target_factor:.3g}x by {margin:.1f}%")
        verdicts.append(FinalistVerdict(row=r, accepted=ok, chosen=i == best,
                                        margin_pct=margin, within_noise=noisy, reason=reason))
    return FinalistChoice(chosen=None if best is None else rows[best],
                          target_factor=target_factor, noise_pct=noise_pct,
                          verdicts=tuple(verdicts))
