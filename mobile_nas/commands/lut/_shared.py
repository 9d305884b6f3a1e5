"""What several ``lut`` subcommands share: calibration counts from the command line and the
report of a built or recalibrated table."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from mobile_nas.commands._common import print_json
from mobile_nas.cost.latency.calibrate import default_fit_networks
from mobile_nas.errors import MobileNasError

if TYPE_CHECKING:
    from mobile_nas.cost.latency.build import LutBuildResult
    from mobile_nas.space.base import SearchSpace


def calibration_counts(args: argparse.Namespace, space: SearchSpace) -> tuple[int, int]:
    """(networks to fit, networks held out) of ``--calibrate`` and ``--held-out``; (0, 0)
    for --calibrate 0."""
    n_fit = default_fit_networks(space) if args.calibrate is None else args.calibrate
    if n_fit < 0 or args.held_out < 0:
        raise MobileNasError("--calibrate and --held-out must be >= 0")
    return (0, 0) if n_fit == 0 else (n_fit, args.held_out)


def print_build_result(result: LutBuildResult, as_json: bool) -> None:
    """What ``lut build`` and ``lut calibrate`` print: the table written, its sentinel's
    re-timed chunks and its calibration (or the JSON record with ``--json``)."""
    if as_json:
        print_json(result.to_json())
        return
    table, md, cal = result.table, result.table.metadata, result.table.calibration
    print(f"wrote {result.path}: {len(table)} layer keys of {table.space} "
          f"({md.get('build_seconds')} s of profiling) on {md.get('cpu')}, "
          f"{md.get('threads')} thread(s), {md.get('provider')}, {table.precision}, layers "
          f"timed as the {table.layer_statistic.name}")
    if result.sampled:
        print(f"added the layers of {len(result.sampled)} random networks of the space "
              f"(seed {md['calibration_sample']['seed']}) to calibrate on")
    sentinel = md.get("sentinel")
    if sentinel and sentinel.get("runs"):
        run = sentinel["runs"][-1]
        events = [e for e in sentinel.get("events", []) if e["run"] == len(sentinel["runs"]) - 1]
        unresolved = sum(not e["resolved"] for e in events)
        print(f"sentinel: baseline {run['baseline_ms']:.4f} ms, noise floor "
              f"{run['noise_floor_pct']:.1f}%; {len(events)} of {run['chunks']} chunks "
              f"re-timed after a jump" + (f", {unresolved} still disturbed (kept the "
                                          f"nearest attempt)" if unresolved else "")
              + (" (metadata.sentinel.events)" if events else ""))
    if cal is None:
        print(f"calibration: none; predictions are {table.predicts}, with no held-out check")
        return
    if cal.weights is not None:
        unit = (f"as a fraction of the anchor ({cal.anchor_ms:.4f} ms when calibrated)"
                if cal.relative else "in ms")
        retest = "" if cal.retest_pct is None else \
            f"; the calibration run's repeats agreed within {cal.retest_pct:.2f}%"
        print(f"calibration: predicts the {cal.target.name} {unit}: per-op network model, "
              f"{cal.coefficients} weights fitted on {len(cal.archs)} networks (in-sample MAPE "
              f"{cal.fit_mape:.2f}%, leave-one-out {cal.loo_mape:.2f}%{retest})"
              + ("" if result.calibrated else " (kept)"))
    else:
        print(f"calibration: predicts the {cal.target.name}: {cal.overhead_ms:+.4f} ms + "
              f"{cal.scale:.4f} x sum {cal.per_layer_ms:+.4f} ms/layer, fitted on "
              f"{len(cal.archs)} networks ({cal.coefficients} coefficient(s), in-sample MAPE "
              f"{cal.fit_mape:.2f}%)" + ("" if result.calibrated else " (kept)"))
    if cal.held_out is not None:
        print(cal.held_out.summary())
    for i, p in enumerate(table.passes, 2):
        c = p.calibration
        print(f"pass {i}: " + (c.held_out.summary() if c is not None and c.held_out else
                               "no held-out check") + (
            "" if c is None or c.retest_pct is None else
            f" (repeats agreed within {c.retest_pct:.2f}%)"))
    if table.passes:
        print(f"the table predicts the median of its {1 + len(table.passes)} passes (the "
              f"lines above the first pass's)")
