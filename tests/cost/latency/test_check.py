import math

import pytest

from mobile_nas.cost.latency import LatencyTable
from mobile_nas.cost.latency.calibrate import CalibrationPlan, calibrate_table
from mobile_nas.cost.latency.check import check_archs, check_table, scatter_plot, summarize_errors

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
