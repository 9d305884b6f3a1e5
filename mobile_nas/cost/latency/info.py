"""What a latency table is, for ``lut info``: coverage, machine, protocol, what it predicts,
its calibration and the entries searches added on demand (:mod:`.ondemand`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mobile_nas.cost.latency.ondemand import (
    extension_path,
    machine_identity,
    machine_mismatches,
    summary,
)
from mobile_nas.cost.latency.requirements import table_settings
from mobile_nas.cost.latency.table import LatencyTable
from mobile_nas.errors import MobileNasError
from mobile_nas.space import get_space


def table_info(table: LatencyTable, path: str | os.PathLike[str]) -> dict[str, Any]:
    """A JSON-ready record of ``table`` (read from ``path``)."""
    md, cal = table.metadata, table.calibration
    try:
        keys = get_space(table.space).enumerate_layers()
        space_keys: int | None = len(keys)
        missing: int | None = len(table.missing(keys))
    except MobileNasError:  # a space this release does not know
        space_keys = missing = None
    extension = extension_path(table.space, path)
    shipped_only = extension == Path(path) or not extension.exists()
    on_demand = dict(md.get("on_demand") or {})
    on_demand.pop("keys", None)
    events = on_demand.pop("events", None) or []
    if events:
        on_demand["last_scale"] = events[-1].get("scale")
    bad = machine_mismatches(table)
    return {
        "table": str(path), "space": table.space, "entries": len(table),
        "space_keys": space_keys, "missing": missing,
        "restricted_to_archs": len(md.get("restricted_to_archs") or ()) or None,
        "machine": machine_identity(md), "date": md.get("date") or md.get("imported"),
        "source": md.get("source"),
        "protocol": {**table_settings(table), "opset": md.get("opset"),
                     "warmup": md.get("warmup")},
        "predicts": table.predicts,
        "calibration": None if cal is None else {
            "fitted_on": len(cal.archs), "fit_mape": cal.fit_mape, "legacy": cal.legacy,
            "held_out": cal.held_out.to_json() if cal.held_out else None},
        "passes": 1 + len(table.passes),
        "pass_held_out": [p.calibration.held_out.to_json() for p in table.passes
                          if p.calibration is not None and p.calibration.held_out],
        "on_demand": on_demand if on_demand.get("runs") else None,
        "extension": None if shipped_only else str(extension),
        "this_machine": not bad,
        "machine_differs": [{"field": f, "table": h, "here": n} for f, h, n in bad],
    }


def info_lines(table: LatencyTable, info: dict[str, Any]) -> list[str]:
    """The text ``lut info`` prints for ``info`` (:func:`table_info` of ``table``)."""
    m, p = info["machine"], info["protocol"]
    cover = f"{info['entries']} layer keys"
    if info["space_keys"] is not None:
        cover = f"{info['entries']} of its {info['space_keys']} layer keys ({info['missing']} " \
                f"missing)"
    if info["restricted_to_archs"]:
        cover += f"; built for the layers of {info['restricted_to_archs']} architectures"
    where = "this machine" if info["this_machine"] else "another machine: " + ", ".join(
        f"{d['field']} {d['table']!r}, here {d['here']!r}" for d in info["machine_differs"])
    cal = table.calibration
    if cal is None:
        calib = "no calibration: a plain layer sum"
    else:
        model = ("per-op network model in fractions of the anchor "
                 f"({cal.anchor_ms:.4f} ms when calibrated)" if cal.relative else
                 "per-op network model in ms" if cal.weights is not None else
                 "linear calibration in ms")
        calib = f"{model} fitted on {len(cal.archs)} networks (in-sample MAPE " \
                f"{cal.fit_mape:.2f}%); " + (cal.held_out.summary() if cal.held_out else
                                             "legacy: no held-out check")
    lines = [
        f"table      {info['table']}",
        f"space      {info['space']}: {cover}",
        f"timed on   {m['device']}, {m['cpu']} ({m['cpu_count']} cores), {m['os']}, "
        f"onnxruntime {m['onnxruntime']}, {info['date']} ({where})",
        f"protocol   {p['threads']} thread(s), {p['provider']}, {p['precision']}, opt level "
        f"{p['opt_level']}, opset {p['opset']}, layers timed as the "
        f"{table.layer_statistic.name} of {p['rounds']} rounds x {p['runs_per_round']} runs",
        f"predicts   {info['predicts']}; {calib}",
    ]
    if table.passes:
        lines.append(f"passes     {info['passes']} builds merged (lut merge): each network "
                     f"is predicted by the median of their anchor fractions; the check above is "
                     f"the first build's")
    added = summary(table)
    lines.append(f"on demand  {added}" if added else
                 "on demand  none (search --profile-missing adds a candidate's missing layers)")
    if info["extension"]:
        lines.append(f"extended   by searches in {info['extension']} (this file is shipped "
                     f"and never written; 'lut info' that file)")
    return lines
