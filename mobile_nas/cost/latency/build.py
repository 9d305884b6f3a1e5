"""``lut build`` and ``lut calibrate`` as library pipelines: which layers to time, which
networks calibrate the table and which check it, and the typed result the command prints.

A table restricted with ``--arch`` covers few networks, and two networks would fit two
coefficients exactly ("fit MAPE 0.00%"), so one disturbed measurement would move every
prediction. :func:`build_lut` therefore adds the layers of a few random networks of the
space (drawn with a recorded seed, :func:`~.calibrate.plan_calibration`) until the table
covers enough networks to fit with residual degrees of freedom and to hold some out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_nas.cost.latency.calibrate import (
    DEFAULT_FIT_NETWORKS,
    DEFAULT_HELD_OUT,
    CalibrationPlan,
    EndToEndMeasure,
    calibrate_table,
    default_fit_networks,
    plan_calibration,
    recalibration_plan,
)
from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.network_model import SHAPE_MIN_NETWORKS
from mobile_nas.cost.latency.profiler import TimingBackend, build_table
from mobile_nas.cost.latency.requirements import lut_build_command
from mobile_nas.cost.latency.runner import cpu_model
from mobile_nas.cost.latency.settings import DEFAULTS, ProfileSettings
from mobile_nas.cost.latency.table import LatencyTable
from mobile_nas.errors import ArchError
from mobile_nas.space import get_space, load_arch
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.layers import LayerKey


def load_space_archs(specs: Sequence[str], space_name: str) -> list[Architecture]:
    """Arch strings, reference names or JSON files, all of space ``space_name``; raises
    :class:`ArchError` naming the first one of another space."""
    archs = [load_arch(s, space_name) for s in specs]
    wrong = [a.to_string() for a in archs if a.space != space_name]
    if wrong:
        raise ArchError(f"architecture {wrong[0]!r} is not in space {space_name!r}")
    return archs


def layer_keys(space: SearchSpace, archs: Sequence[Architecture] = ()) -> list[LayerKey]:
    """The keys a table of ``archs`` needs (sorted, distinct), or every key of the space."""
    if not archs:
        return list(space.enumerate_layers())
    return sorted({k for a in archs for k in space.layers(a)})


@dataclass(frozen=True)
class LutBuildResult:
    """What ``lut build`` / ``lut calibrate`` did: the table written to ``path``; whether
    this run fitted its calibration (``calibrated``; a resumed build with nothing new keeps
    a checked calibration); the random networks added for calibration (``sampled``)."""

    table: LatencyTable
    path: Path
    calibrated: bool
    sampled: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        md, cal = self.table.metadata, self.table.calibration
        sentinel = md.get("sentinel") or {}
        return {"table": str(self.path), "space": self.table.space,
                "num_keys": len(self.table), "build_seconds": md.get("build_seconds"),
                "device": md.get("device"), "cpu": md.get("cpu"),
                "threads": md.get("threads"), "provider": md.get("provider"),
                "precision": self.table.precision, "clock": md.get("clock"),
                "statistic": self.table.statistic, "predicts": self.table.predicts,
                "calibrated_now": self.calibrated, "sampled_archs": list(self.sampled),
                "calibration": cal.to_json() if cal else None,
                "held_out_check": cal.held_out.to_json() if cal and cal.held_out else None,
                "sentinel_events": len(sentinel.get("events", []))}


def build_lut(space: SearchSpace, out: str | os.PathLike[str], *,
              archs: Sequence[Architecture] = (), settings: ProfileSettings = DEFAULTS,
              n_fit: int = DEFAULT_FIT_NETWORKS,
              n_held_out: int = DEFAULT_HELD_OUT, seed: int = 0, resume: bool = False,
              progress: bool = True, backend: TimingBackend | None = None,
              measure: EndToEndMeasure | None = None) -> LutBuildResult:
    """Profiles the layers of ``archs`` (or the whole space) into ``out`` and calibrates it.

    ``n_fit`` networks fit the calibration and ``n_held_out`` others check it (both 0: no
    calibration, predictions are plain layer sums). With ``archs``, the layers of random
    networks of the space (``seed``) are added so that enough networks are covered; they are
    recorded in ``metadata.calibration_sample``. The calibration is refitted when the table
    grew or had no checked calibration. ``backend`` and ``measure`` replace onnxruntime
    (tests).
    """
    calibrate = n_fit > 0 or n_held_out > 0
    restricted = bool(archs)
    extra: dict[str, Any] = {}
    sampled: tuple[Architecture, ...] = ()
    if calibrate:  # checks the counts before any timing
        plan = plan_calibration(space, include=archs, n_fit=n_fit, n_held_out=n_held_out,
                                seed=seed, references=not restricted)
        if restricted:
            sampled = plan.sampled
            extra["calibration_sample"] = {"seed": seed,
                                           "archs": [a.to_string() for a in sampled]}
    covered = [*archs, *sampled]
    keys = layer_keys(space, covered)
    out = Path(out)
    before = None
    if resume and out.exists():
        old = LatencyTable.load(out)
        before = len(old)
    table = build_table(space.name, keys, out, settings=settings, resume=resume,
                        restricted_to=[a.to_string() for a in covered] or None,
                        progress=progress, backend=backend, metadata=extra)
    grew = before is None or len(table) > before
    checked = table.calibration is not None and table.calibration.held_out is not None
    calibrated = False
    if calibrate and (grew or not checked):
        plan = plan_calibration(space, covers=table, include=covered, n_fit=n_fit,
                                n_held_out=n_held_out, seed=seed, references=not restricted)
        table = calibrate_table(table, plan, measure=measure, progress=progress)
        table.save(out)
        calibrated = True
    return LutBuildResult(table=table, path=out, calibrated=calibrated,
                          sampled=tuple(a.to_string() for a in sampled))


def pass_path(out: str | os.PathLike[str], index: int) -> Path:
    """Where pass ``index`` (0-based) of a ``--passes`` build of ``out`` is kept."""
    out = Path(out)
    return out.with_name(f"{out.stem}.pass{index}{out.suffix}")


#: Builds a whole-space table is made of by default (``lut build --passes``, the demo): on a
#: 2-core VM, three builds merged were within ±10% of measured ratios for 88-94% of networks
#: where one build was for 17-95% (protocol latency_prediction_intel_v5).
DEFAULT_PASSES = 3


def default_passes(*, restricted: bool, n_fit: int) -> int:
    """:data:`DEFAULT_PASSES` for a whole-space build whose calibration fits the shape network
    model (what the default was checked on); else 1 (a restricted build's passes would cover
    other random networks, and a small calibration has no relative model to average)."""
    return DEFAULT_PASSES if not restricted and n_fit >= SHAPE_MIN_NETWORKS else 1


def build_passes(space: SearchSpace, out: str | os.PathLike[str], *, passes: int,
                 seed: int = 0, resume: bool = False,
                 build: Callable[..., LutBuildResult] | None = None, **options: Any
                 ) -> LutBuildResult:
    """``passes`` independent builds of :func:`build_lut` (calibration seeds ``seed``,
    ``seed + 1``, ...; all ``seed`` when restricted to ``archs``), each into its own file
    (:func:`pass_path`; with ``resume``, a finished pass is kept and a killed one
    continued), merged into ``out``: predictions are the median of the builds'
    (:attr:`LatencyTable.passes`). ``options`` go to every build; ``build`` replaces
    :func:`build_lut` (tests)."""
    if passes < 1:
        raise LatencyTableError(f"passes must be >= 1, got {passes}")
    if passes > 1 and options.get("n_fit", DEFAULT_FIT_NETWORKS) == 0:
        raise LatencyTableError("passes are merged through their calibrations: more than one "
                                "needs a calibration (not --calibrate 0)")
    if passes == 1:
        return (build or build_lut)(space, out, seed=seed, resume=resume, **options)
    # a restricted build adds the layers of random networks drawn with its seed: its passes
    # share the seed so that they cover the same layers
    restricted = bool(options.get("archs"))
    results = [(build or build_lut)(space, pass_path(out, i), seed=seed if restricted
                                    else seed + i, resume=resume, **options)
               for i in range(passes)]
    first, *more = (r.table for r in results)
    merged = first.with_passes(more)
    merged.save(out)
    return LutBuildResult(table=merged, path=Path(out),
                          calibrated=any(r.calibrated for r in results),
                          sampled=results[0].sampled)


def recalibrate_lut(path: str | os.PathLike[str], *, space: SearchSpace | None = None,
                    include: Sequence[Architecture] = (), n_fit: int = DEFAULT_FIT_NETWORKS,
                    n_held_out: int = DEFAULT_HELD_OUT, seed: int = 0, progress: bool = False,
                    measure: EndToEndMeasure | None = None) -> LutBuildResult:
    """Refits the calibration of the table at ``path`` (``lut calibrate``) on networks it
    covers (:func:`~.calibrate.recalibration_plan`) and writes it back."""
    path = Path(path)
    table = LatencyTable.load(path)
    space = space or get_space(table.space)
    if space.name != table.space:
        raise LatencyTableError(f"table {path} is for space {table.space!r}, not "
                                f"{space.name!r}")
    try:
        plan: CalibrationPlan = recalibration_plan(table, space, include=include, n_fit=n_fit,
                                                   n_held_out=n_held_out, seed=seed)
    except LatencyTableError as exc:
        if "networks to fit and" in str(exc) and "only" not in str(exc):
            raise  # bad counts
        raise LatencyTableError(f"{exc}; add the layers of random networks with: "
                                f"{lut_build_command(table, path)}") from None
    table = calibrate_table(table, plan, measure=measure, progress=progress)
    table.save(path)
    return LutBuildResult(table=table, path=path, calibrated=True)


@dataclass(frozen=True)
class MachineTable:
    """The table that predicts this machine: its path and why it is that one (a line)."""

    path: Path
    reason: str
    built_here: bool


def table_for_this_machine(space: SearchSpace, shipped: str | os.PathLike[str] | None,
                           folder: str | os.PathLike[str], *, progress: bool = False,
                           log: Callable[[str], None] | None = None,
                           build: Callable[[Path], LutBuildResult] | None = None
                           ) -> MachineTable:
    """``shipped`` when it was timed on this machine's CPU model; else a table of ``space``
    built here with :func:`build_lut`'s defaults, :func:`default_passes` of them merged
    (:func:`build_passes`), into ``folder/<space>_table.json`` (resumed
    when a build of this machine is there; a build of another CPU model is replaced).

    A table timed on another CPU predicts ratios with a bias of its own: on an Intel Xeon VM
    (2026-12-07) the AMD-built fmnist28 table put every ratio to fmnist28_mnasnet 13-20% low,
    tables built there -6..+10% (``benchmarks/results/latency_tables_paired_intel.md``).
    ``log`` gets a line saying why before a build; ``build`` replaces the build (tests)."""
    here = cpu_model()
    timed_on = LatencyTable.load(shipped).metadata.get("cpu") if shipped else None
    if shipped and timed_on == here:
        return MachineTable(Path(shipped), f"{Path(shipped).name} was timed on this CPU "
                                           f"model ({here})", built_here=False)
    path = Path(folder) / f"{space.name}_table.json"
    passes = default_passes(restricted=False, n_fit=default_fit_networks(space))
    for old in (path, *(pass_path(path, i) for i in range(passes))):
        if old.exists() and LatencyTable.load(old).metadata.get("cpu") != here:
            old.unlink()
    why = (f"{Path(shipped).name} was timed on {timed_on}, this machine has {here}"
           if shipped else f"no table is shipped for {space.name}")
    if log is not None:
        log(f"{why}: building {path} ({passes} passes, about a minute each on 2 cores, "
            f"once; resumed if stopped)")
    result = (build or (lambda out: build_passes(space, out, passes=passes, resume=True,
                                                 progress=progress)))(path)
    return MachineTable(result.path, f"predicting with {result.path}, built here",
                        built_here=True)
