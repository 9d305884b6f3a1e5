import json
import math

import pytest

from mobile_nas.cost.latency import LatencyTable
from mobile_nas.cost.latency.calibrate import CalibrationPlan, calibrate_table
from mobile_nas.cost.latency.check import (
    check_archs,
    check_lut,
    check_table,
    scatter_plot,
    summarize_errors,
)
from mobile_nas.cost.latency.table import shipped_table_path
from mobile_nas.errors import MobileNasError, OutOfRangeError

from .conftest import SMALL_ARCH


def test_summarize_errors():
    s = summarize_errors([1.0, 2.09, 3.0, 4.6], [1.0, 2.0, 3.3, 4.0])
    assert s["within_5"] == 0.5 and s["within_10"] == 0.75
    assert math.isclose(s["mape"], (0 + 4.5 + 100 * 0.3 / 3.3 + 15) / 4)
    assert s["spearman"] == pytest.approx(1.0) and s["kendall"] == pytest.approx(1.0)


def test_check_real_table(small_table_path, fmnist, small_arch, small_variants, tmp_path):
    plan = CalibrationPlan(fit=tuple(small_variants[:3]), held_out=tuple(small_variants[3:5]),
                           seed=0)
    # a fake end-to-end measurement for the calibration: the real one is check_table's
    table = calibrate_table(LatencyTable.load(small_table_path), plan,
                            measure=lambda archs: [0.1 * (i + 1) for i in range(len(archs))])
    archs = check_archs(table, fmnist, n=3)
    # a restricted table offers its own architectures (here only the calibration one)
    assert archs == []
    report = check_table(table, [("small", small_arch), ("again", small_arch)], rounds=3,
                         repeats=2)
    assert [r.arch for r in report.rows] == [SMALL_ARCH, SMALL_ARCH]
    assert all(r.measured_ms > 0 and r.predicted_ms > 0 and r.repeat_ms > 0
               for r in report.rows)
    assert report.noise_mape is not None and 0 <= report.within_5 <= 1
    assert report.statistic == "wall-clock median"  # what the calibration predicts
    png = tmp_path / "check.png"
    scatter_plot(report, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_check_lut_notes_on_demand_entries_then_measures(tmp_path, monkeypatch):
    """``lut check``'s pipeline: the on-demand note comes before the measurement, the report
    and the plot after it (the measurement is faked here; test_check_real_table times)."""
    from mobile_nas.cost.latency import check

    data = json.loads(shipped_table_path("fmnist28").read_text())
    data["metadata"]["on_demand"] = {"entries": 2, "runs": 1, "seconds": 0.5,
                                     "first": "2026-01-01", "last": "2026-01-01"}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    events: list[str] = []
    asked: list[int | None] = []

    def fake_check_table(table, archs, **kw):
        events.append("measured")
        asked.append(kw.get("probes"))
        rows = tuple(check.CheckRow(arch=a.to_string(), name=name, predicted_ms=1.0 + i,
                                    measured_ms=1.1 + i, measured_iqr_ms=0.0)
                     for i, (name, a) in enumerate(archs))
        s = summarize_errors([r.predicted_ms for r in rows], [r.measured_ms for r in rows])
        return check.CheckReport(rows=rows, **s)

    monkeypatch.setattr(check, "check_table", fake_check_table)
    png = tmp_path / "c.png"
    result = check_lut(path, n=1, plot=png, note=events.append)
    assert events[0].startswith("on demand: 2 entries added on demand by 1 search")
    assert events[1:] == ["measured"] and png.read_bytes()[:4] == b"\x89PNG"
    rec = result.to_json()
    assert (rec["table"], rec["plot"]) == (str(path), str(png)) and len(rec["rows"]) >= 2
    assert check_lut(path, n=1, plot=None).plot is None  # no note asked for: none given
    with pytest.raises(MobileNasError, match="is for space 'fmnist28', not 'mobile224'"):
        check_lut(path, space="mobile224")
    with pytest.raises(OutOfRangeError, match="^n must be >= 0, got -1$") as info:
        check_lut(path, n=-1)
    assert (info.value.what, info.value.value, info.value.allowed) == ("n", -1, ">= 0")
    assert events[2:] == ["measured"]  # nothing measured for the refused ones
    check_lut(path, n=1, plot=None, probes=4)  # probes are passed to the measurement
    assert asked == [0, 0, 4]
    with pytest.raises(OutOfRangeError, match="^probes must be >= 0"):
        check_lut(path, n=1, probes=-1)
