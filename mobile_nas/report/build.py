"""build_report(RUN_DIR): the PNGs and report.html of a search run (plus deployables)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_nas.atomic import atomic_write_text
from mobile_nas.cost.latency import TableRequest
from mobile_nas.cost.latency.source import open_table
from mobile_nas.errors import MobileNasError
from mobile_nas.report import html as H
from mobile_nas.report import plots
from mobile_nas.report.deploy import DEPLOY_FILE, DeployRecord
from mobile_nas.report.pareto import plot_pareto
from mobile_nas.report.plots import plot_architecture, plot_reward_curve, stage_rows
from mobile_nas.report.run import ReportError, Run, load_run
from mobile_nas.space import Architecture


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    images: dict[str, Path]
    notes: tuple[str, ...]  # what could not be drawn, and why


def build_report(run_dir: str | os.PathLike, *, out_dir: str | os.PathLike | None = None,
                 table: str | os.PathLike | None = None) -> ReportFiles:
    """Writes pareto.png, reward.png, arch.png, latency.png and report.html into ``out_dir``
    (default ``run_dir``). ``table``: latency table for the per-layer breakdown (default:
    the run's table, else the shipped table of the space)."""
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path
    if not out.is_dir():
        raise ReportError(f"output folder {str(out)!r} does not exist")
    if not run.trials:
        raise ReportError(f"{str(run.path)!r} has no finished trials to report on")
    notes: list[str] = []
    images: dict[str, Path] = {}
    targets = run.targets
    title = (f"{len(run.trials)} trials, {run.meta.get('strategy', '?')}"
             + "".join(f", {k} target {v:g}" for k, v in targets.items()))
    images["pareto"] = out / "pareto.png"
    plot_pareto(run.trials, run.pareto, images["pareto"], best=run.best_trial,
                latency_target_ms=targets.get("latency_ms"), title=title)
    images["reward"] = out / "reward.png"
    plot_reward_curve(run.trials, images["reward"])

    arch = _arch(run)
    prediction = None
    if arch is not None:
        images["arch"] = out / "arch.png"
        plot_architecture(arch, images["arch"])
        prediction, source = _predict(arch, run, table, notes)
        if prediction is not None:
            images["latency"] = out / "latency.png"
            plots.plot_latency_breakdown(arch, prediction.per_layer, images["latency"],
                                         total_ms=prediction.total_ms, source=source)
    deploy = _deploy(run.path)

    b = run.best
    summary = [("architecture", f"<code>{H.esc(b.get('arch'))}</code>"),
               ("space", H.esc(run.space)), ("strategy", H.esc(run.meta.get("strategy"))),
               ("dataset", H.esc(run.meta.get("dataset"))),
               ("targets", H.esc(", ".join(f"{k} {v:g}" for k, v in targets.items()) or "none")),
               ("reward", H.esc(json.dumps(run.reward_fn))),
               ("latency source", H.esc(run.meta.get("latency"))),
               ("trials", len(run.trials))]
    if "accuracy" in b:
        summary += [("search accuracy (proxy, validation)", f"{100 * b['accuracy']:.2f}%"),
                    ("latency (search)", f"{b['latency_ms']:.3f} ms"),
                    ("MACs", f"{b['macs'] / 1e6:.2f}M"), ("params", f"{b['params'] / 1e3:.1f}k"),
                    ("feasible", "yes" if b.get("feasible") else "no")]
    sections = [("Best architecture", H.kv_table(summary))]
    if deploy:
        sections.append(("Trained and exported", _deploy_html(deploy)))
    sections.append(("Pareto front", H.img(images["pareto"], "Pareto front")
                     + H.trials_table(run.pareto, highlight=b.get("trial"))))
    sections.append(("Reward and best so far", H.img(images["reward"], "reward curve")))
    if "arch" in images:
        rows = stage_rows(arch)
        table_rows = "".join(
            f"<tr><td>{H.esc(r['name'])}</td><td>{H.esc(r['what'])}</td>"
            f"<td class=num>{r['cout']}</td><td>{r['hw']}</td></tr>" for r in rows)
        sections.append(("Architecture, stage by stage", H.img(images["arch"], "architecture")
                         + "<table><tr><th>stage</th><th>choice</th><th>out channels</th>"
                           f"<th>input size</th></tr>{table_rows}</table>"))
    if "latency" in images:
        sections.append(("Per-layer latency (table)", H.img(images["latency"], "latency")))
    top = sorted(run.trials, key=lambda t: -t["reward"])[:10]
    sections.append(("Top 10 trials by reward", H.trials_table(top, highlight=b.get("trial"))))
    if notes:
        sections.append(("Notes", "<ul>" + "".join(f"<li>{H.esc(n)}</li>" for n in notes)
                         + "</ul>"))
    page = H.render(title=f"mobile-nas run {run.path.name}", sections=sections)
    html_path = out / "report.html"
    atomic_write_text(html_path, page)
    return ReportFiles(html_path, images, tuple(notes))


def _arch(run: Run):
    if not run.best.get("arch") or not run.space:
        return None
    try:
        return Architecture.from_string(run.best["arch"], run.space)
    except MobileNasError as exc:
        raise ReportError(f"best.json of {str(run.path)!r}: {exc}") from None


def _predict(arch, run: Run, table, notes: list[str]):
    source = run.meta.get("latency")
    if isinstance(source, str):  # run_search records "table:PATH"
        source = source.removeprefix("table:")
    recorded = source if isinstance(source, str) and source.endswith(".json") \
        and Path(source).is_file() else None
    precision = str(run.meta.get("precision") or "fp32")  # what the search optimized
    try:
        latency = open_table(arch.space, table, recorded, precision=precision,
                             request=TableRequest(precision=precision))
        if latency is None:
            notes.append(f"no latency table for space {arch.space!r}: per-layer breakdown "
                         f"skipped")
            return None, ""
        return latency.predict(arch), f"table {latency.path}"
    except MobileNasError as exc:
        if table:
            raise
        notes.append(f"per-layer breakdown skipped: {exc}")
        return None, ""


def _deploy(run_dir: Path) -> DeployRecord | None:
    """``RUN_DIR/deploy.json`` (written by ``mobile-nas demo``), None when there is none."""
    path = run_dir / DEPLOY_FILE
    if not path.is_file():
        return None
    return DeployRecord.load(path)


def _deploy_html(d: DeployRecord) -> str:
    rows: list[tuple[str, Any]] = []
    tr = d.train
    rows += [("training", H.esc(f"{tr.epochs} epochs on {tr.train_images} "
                                f"images, {tr.seconds:.0f} s")),
             ("test accuracy (PyTorch)", f"{100 * tr.test_accuracy:.2f}%"),
             ("checkpoint", H.esc(tr.path))]
    ex = d.export
    rows += [("fp32 ONNX", H.esc(ex.path)),
             ("fp32 test accuracy (onnxruntime)", f"{100 * ex.test_accuracy:.2f}%"),
             ("parity max |diff|", f"{ex.max_abs_diff:.2e} on {ex.parity_images} "
                                   "test images")]
    if ex.predicted_latency_ms is not None:
        source = ", ".join(x for x in (d.predicted_statistic, d.latency_table
                                       and f"table {Path(d.latency_table).name}") if x)
        rows.append(("predicted latency", H.esc(f"{ex.predicted_latency_ms:.3f} ms"
                                                + (f" ({source})" if source else ""))))
    q = ex.int8
    if q:
        rows += [("INT8 ONNX", H.esc(q.path)),
                 ("INT8 test accuracy", f"{100 * q.test_accuracy:.2f}% (drop "
                                        f"{100 * q.accuracy_drop:.2f} points)"),
                 ("INT8 calibration", H.esc(q.calibration))]
        if d.predicted_int8_ms is not None:
            source = ", ".join(x for x in (d.predicted_int8_statistic, d.int8_latency_table
                                           and f"table {Path(d.int8_latency_table).name}")
                               if x)
            rows.append(("predicted INT8 latency", H.esc(
                f"{d.predicted_int8_ms:.3f} ms" + (f" ({source})" if source else ""))))
    if ex.int8_error:
        rows.append(("INT8 not kept", H.esc(ex.int8_error)))
    t: dict[str, Any] = dict(ex.timing or {})
    for k in ("fp32", "int8"):
        if k in t:
            rows.append((f"measured {k} latency, wall clock (batch 1, {t['threads']} "
                         "thread)",
                         f"p50 {t[k]['p50_ms']:.3f} ms, p90 {t[k]['p90_ms']:.3f} ms"))
    if "speedup" in t:
        rows.append(("INT8 speed-up (fp32 p50 / INT8 p50)", f"x{t['speedup']:.2f}"))
    rows += [("macs", f"{d.macs:,}"), ("params", f"{d.params:,}")]
    return H.kv_table(rows)
