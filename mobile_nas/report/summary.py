"""A deploy record (``RUN_DIR/deploy.json``) as terminal lines: what ``mobile-nas demo``
prints of the pipeline's result, one block at a time, each a list of lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobile_nas.cost.latency.statistic import WALL_MEDIAN
from mobile_nas.errors import MobileNasError
from mobile_nas.export.usability import PROVIDERS, ProviderCoverage
from mobile_nas.report.deploy import DeployRecord


def _complete(d: DeployRecord) -> None:
    """Refuses a record without the mobile export, its analyses or the total time."""
    mobile = d.export_mobile
    if mobile.ort is None or mobile.mobile_usability is None or \
            d.export.mobile_usability is None or d.total_seconds is None:
        raise MobileNasError("the demo's deploy record lacks the mobile export or its times")


def _predicted(d: DeployRecord) -> str:
    """``"cpu-clock min "``: what the record's predictions are, when it says so."""
    return f"{d.predicted_statistic} " if d.predicted_statistic else ""


def _table(d: DeployRecord) -> str:
    return f"table {Path(d.latency_table).name}" if d.latency_table else "table"


def measurement_lines(d: DeployRecord, *, target: str, onnx_path: Path) -> list[str]:
    """The network, its accuracy and latency (measured, and predicted against ``target``,
    the latency target as the user gave it), INT8's speed-up or why INT8 was not kept."""
    _complete(d)
    report, q = d.export, d.export.int8
    timing: dict[str, Any] = dict(report.timing or {})
    lines = [f"architecture   {d.arch}",
             f"               {d.macs / 1e6:.2f}M MACs, {d.params / 1e3:.1f}k params",
             f"test accuracy  {100 * d.train.test_accuracy:.2f}% (PyTorch), "
             f"{100 * report.test_accuracy:.2f}% fp32 ONNX"
             + (f", {100 * q.test_accuracy:.2f}% INT8 ONNX" if q else "")]
    lat = [f"{k} {timing[k]['p50_ms']:.3f} ms" for k in ("fp32", "int8") if k in timing]
    measured = f"latency        measured {WALL_MEDIAN.name} (p50) {', '.join(lat)} (batch 1, "
    if d.references and d.references[0].measured_ratio is not None:
        # the deployable (dynamic batch, input normalization inside) is not the network the
        # table predicts: prediction and target are compared below, on the tables' export
        lines.append(f"{measured}1 thread, {onnx_path.name}, one timing run); target "
                     f"{target}: predicted and measured against the reference under 'vs "
                     f"hand design'")
    else:
        pred = (f"; predicted {_predicted(d)}{report.predicted_latency_ms:.3f} ms "
                f"({_table(d)}, target {target})"
                if report.predicted_latency_ms is not None else "")
        lines.append(f"{measured}1 thread){pred}")
    if d.predicted_int8_ms is not None and "int8" in timing:
        what = f"{d.predicted_int8_statistic} " if d.predicted_int8_statistic else ""
        where = f" ({Path(d.int8_latency_table).name})" if d.int8_latency_table else ""
        lines.append(f"INT8 latency   measured {timing['int8']['p50_ms']:.3f} ms, predicted "
                     f"{what}{d.predicted_int8_ms:.3f} ms{where}")
    if "speedup" in timing:
        lines.append(f"INT8 speed-up  x{timing['speedup']:.2f}")
    if report.int8_error:
        lines.append(f"INT8           not kept: {report.int8_error}")
    return lines


def deployable_lines(d: DeployRecord, *, onnx_path: Path) -> list[str]:
    """The exported files of both profiles and onnxruntime's mobile usability analysis."""
    _complete(d)
    mobile, q = d.export_mobile, d.export.int8
    ort, usability = mobile.ort, mobile.mobile_usability
    server_usability = d.export.mobile_usability
    assert ort is not None and usability is not None and server_usability is not None
    lines = [f"onnx           {onnx_path}" + (f", {q.path}" if q else ""),
             f"mobile         {mobile.path}, {ort['path']}"
             + (f", {ort['int8_path']}" if ort["int8_path"] else "")
             + f" (batch 1; parity max |diff| {mobile.max_abs_diff:.1e}, test accuracy "
             f"{100 * mobile.test_accuracy:.2f}%)"]
    for i, p in enumerate(PROVIDERS):  # onnxruntime's mobile usability analysis
        label = "mobile EPs" if i == 0 else ""
        lines.append(f"{label:15s}{ProviderCoverage.from_json(usability[p]).summary()}")
    server = [server_usability[p] for p in PROVIDERS]
    lines.append(f"{'':15s}(server {onnx_path.name}: " + ", ".join(
        f"{c['provider']} {c['supported_nodes']}/{c['nodes']}" for c in server) + " nodes)")
    return lines


def time_line(d: DeployRecord) -> str:
    """The pipeline's wall time, in all and per stage."""
    _complete(d)
    assert d.total_seconds is not None
    return (f"time           {d.total_seconds / 60:.1f} min ("
            + ", ".join(f"{k} {v:.0f} s" for k, v in d.stage_seconds.items()) + ")")


def comparison_lines(d: DeployRecord) -> list[str]:
    """The pick beside the hand-designed references: ratios to one reference timed
    interleaved in several runs (and ms), the table's predicted ratio, stand-alone accuracy
    (1-epoch ground truth, validation split) where the network is in the shipped set."""
    compared = d.references
    if not compared:
        return []
    if compared[0].measured_ratio is None:
        return _comparison_lines_ms(d)
    ref = compared[0].ratio_to
    runs = max(len(c.measured_ratios) for c in compared)
    lines = [f"vs hand design (exported as the tables time them: fp32, batch 1, 1 thread; "
             f"timed interleaved with {ref} in {runs} runs; accuracy: stand-alone 1-epoch "
             f"ground truth, validation)"]
    for c in compared:
        spread = ""
        if len(c.measured_ratios) > 1 and c.name != ref:
            spread = (f" (runs {min(c.measured_ratios):.3f}-{max(c.measured_ratios):.3f})")
        pred = (f", predicted {c.predicted_ratio:.3f}x ({c.predicted_ms:.3f} ms)"
                if c.predicted_ratio is not None else "")
        lines.append(f"  {c.name:22s} measured {c.measured_ratio:.3f}x {ref}{spread} "
                     f"{c.measured_ms:.3f} ms{pred}; {_accuracy(c.ground_truth_val)}")
    lines.append("  searches against stand-alone ground truth: "
                 "benchmarks/results/search_vs_groundtruth.md")
    return lines


def _comparison_lines_ms(d: DeployRecord) -> list[str]:
    """A record from before ratios: milliseconds of one interleaved timing run."""
    compared = d.references
    lines = ["vs hand design (fp32, batch 1, 1 thread, one interleaved timing run; accuracy: "
             "stand-alone 1-epoch ground truth, validation)"]
    if any(c.predicted_ms is not None for c in compared):
        lines.append(f"  measured {WALL_MEDIAN.name}; predicted {_predicted(d)}({_table(d)})")
    for c in compared:
        pred = f"predicted {c.predicted_ms:.3f} ms, " if c.predicted_ms is not None else ""
        lines.append(f"  {c.name:22s} measured {c.measured_ms:.3f} ms "
                     f"({pred.rstrip(', ')}); {_accuracy(c.ground_truth_val)}")
    return lines


def _accuracy(val: float | None) -> str:
    return f"val {100 * val:.2f}%" if val is not None else "not in the ground-truth set"
