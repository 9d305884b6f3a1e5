"""Which tables may predict: a checked calibration (legacy schema-1 ones with a warning), and
the requested precision, threads and provider; each refusal is one line naming the
``lut build`` command that fixes it."""

import dataclasses
import json
import logging
import shlex
from pathlib import Path

import pytest

from mobile_nas.cost.latency import (
    Calibration,
    HeldOutCheck,
    LatencyPredictor,
    LatencyStatistic,
    LatencyTable,
    LayerLatency,
    TableMismatchError,
    TableRequest,
    UncheckedCalibrationError,
    requirements,
    shipped_table_path,
)
from mobile_nas.cost.latency.profiler import ProfileSettings
from mobile_nas.cost.latency.settings import DEFAULT_OPSET, DEFAULTS, RESUME_FIELDS
from mobile_nas.cost.latency.table import SCHEMA_VERSION

from .conftest import SMALL_ARCH, SMALL_VARIANTS

LEGACY = Path(__file__).parent / "data" / "legacy_v1_table.json"
CHECK = HeldOutCheck(archs=("x", "y"), measured_ms=(1.0, 2.0), predicted_ms=(1.02, 1.9))


@pytest.fixture(autouse=True)
def _forget_warnings(monkeypatch):
    monkeypatch.setattr(requirements, "_warned", set())


def _table(fmnist, small_arch, *, calibration=None, **metadata) -> LatencyTable:
    keys = sorted(set(fmnist.layers(small_arch)))
    return LatencyTable(space="fmnist28",
                        metadata={"threads": 1, "provider": "CPUExecutionProvider", **metadata},
                        entries={k.id: LayerLatency(median_ms=0.01, iqr_ms=0.0, n=3)
                                 for k in keys}, calibration=calibration)


def _cal(**kw) -> Calibration:
    return Calibration(overhead_ms=0.01, scale=1.1, per_layer_ms=0.0, coefficients=2,
                       archs=tuple(SMALL_VARIANTS[:3]), measured_ms=(0.1, 0.2, 0.3), **kw)


def test_opset_default_matches_the_exporter():
    from mobile_nas.torch_onnx import DEFAULT_OPSET as torch_opset

    assert DEFAULT_OPSET == torch_opset == ProfileSettings().opset


def test_a_checked_calibration_predicts(fmnist, small_arch):
    table = _table(fmnist, small_arch, calibration=_cal(held_out=CHECK))
    pred = LatencyPredictor(table).predict(small_arch)
    assert pred.statistic == "wall-clock median"
    assert pred.total_ms == pytest.approx(0.01 + 1.1 * 0.01 * len(fmnist.layers(small_arch)))


def test_a_calibration_without_held_out_check_is_refused(fmnist, small_arch, tmp_path):
    path = tmp_path / "t.json"
    table = _table(fmnist, small_arch, calibration=_cal(), clock="cpu", statistic="median",
                   restricted_to_archs=[SMALL_ARCH])
    table.save(path)
    with pytest.raises(UncheckedCalibrationError) as info:
        LatencyPredictor(LatencyTable.load(path), table_path=path)
    msg = str(info.value)
    assert "\n" not in msg and "without a held-out check" in msg and str(path) in msg
    cmd = shlex.split(msg.split("with: ", 1)[1])
    assert cmd[:5] == ["mobile-nas", "lut", "build", "--space", "fmnist28"]
    assert cmd[cmd.index("--arch") + 1] == SMALL_ARCH and cmd[-1] == "--resume"
    assert cmd[cmd.index("--clock") + 1] == "cpu" and cmd[cmd.index("--out") + 1] == str(path)


@pytest.mark.parametrize("request_, words, flags", [
    (TableRequest(threads=4), "threads 1, not the requested threads 4", ["--threads", "4"]),
    (TableRequest(provider="CoreMLExecutionProvider"),
     "provider CPUExecutionProvider, not the requested provider CoreMLExecutionProvider",
     ["--provider", "CoreMLExecutionProvider"]),
    (TableRequest(precision="int8", threads=2),
     "precision fp32, threads 1, not the requested precision int8, threads 2",
     ["--threads", "2", "--precision", "int8"]),
])
def test_a_table_for_other_settings_is_refused(fmnist, small_arch, request_, words, flags):
    table = _table(fmnist, small_arch, calibration=_cal(held_out=CHECK))
    with pytest.raises(TableMismatchError) as info:
        LatencyPredictor(table, table_path="tables/t.json", request=request_)
    msg = str(info.value)
    assert "\n" not in msg and f"latency table tables/t.json was built for {words};" in msg
    cmd = shlex.split(msg.split("build one with: ", 1)[1])
    assert cmd[:5] == ["mobile-nas", "lut", "build", "--space", "fmnist28"]
    assert all(cmd[cmd.index(f) + 1] == v for f, v in zip(flags[::2], flags[1::2],
                                                            strict=True))
    assert "--resume" not in cmd and cmd[cmd.index("--out") + 1].startswith("tables/t.")
    # the same settings are accepted
    LatencyPredictor(table, request=TableRequest(threads=1, precision="fp32",
                                                 provider="CPUExecutionProvider"))


def test_the_legacy_fixture_predicts_with_one_warning(fmnist, small_arch, caplog):
    """A schema-1 table (the format of the shipped tables before held-out checks): its
    in-sample calibration of the CPU-clock minimum is accepted, with one warning."""
    table = LatencyTable.load(LEGACY)
    cal = table.calibration
    assert json.loads(LEGACY.read_text())["schema_version"] == 1 < SCHEMA_VERSION
    assert cal.legacy and cal.held_out is None and len(cal.archs) == 12
    assert cal.target == LatencyStatistic("cpu", "min") and table.predicts == "cpu-clock min"
    with caplog.at_level(logging.WARNING, logger="mobile_nas.cost.latency"):
        first = LatencyPredictor(table, table_path=LEGACY).predict(small_arch)
        LatencyPredictor(table, table_path=LEGACY)
    warning, = [r.getMessage() for r in caplog.records]
    assert "legacy calibration (schema 1)" in warning and "cpu-clock min" in warning
    assert "mobile-nas lut build --space fmnist28" in warning and "\n" not in warning
    expected = cal.apply(sum(table.entries[k.id].min_ms for k in fmnist.layers(small_arch)),
                         len(fmnist.layers(small_arch)))
    assert first.total_ms == pytest.approx(expected) and first.statistic == "cpu-clock min"


def test_a_legacy_table_saved_again_stays_legacy(tmp_path):
    path = tmp_path / "t.json"
    LatencyTable.load(LEGACY).save(path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["calibration"]["legacy"] is True
    assert data["calibration"]["target"] == {"clock": "cpu", "statistic": "min"}
    assert LatencyTable.load(path) == LatencyTable.load(LEGACY)


@pytest.mark.parametrize("space", ["fmnist28", "mobile224", "nasnet", "nb201"])
def test_shipped_tables_are_checked_or_marked_legacy(space):
    table = LatencyTable.load(shipped_table_path(space))
    cal = table.calibration
    assert cal is not None and (cal.held_out is not None or cal.legacy)
    if cal.held_out is not None:  # rebuilt by this release: predicts what users measure
        assert cal.target == LatencyStatistic("wall", "median")
    requirements.ensure_usable(table, path=shipped_table_path(space))


def test_build_command_resumes_with_the_tables_own_protocol(fmnist, small_arch):
    table = _table(fmnist, small_arch, calibration=_cal(), clock="cpu", statistic="min",
                   rounds=4, precision="fp32")
    cmd = shlex.split(requirements.lut_build_command(table, "t.json"))
    assert cmd == ["mobile-nas", "lut", "build", "--space", "fmnist28", "--clock", "cpu",
                   "--statistic", "min", "--rounds", "4", "--out", "t.json", "--resume"]


def test_defaults_used_by_the_command_are_the_build_defaults():
    # lut build's parser defaults must equal ProfileSettings' for the commands to resume
    from mobile_nas.cli import build_parser

    args = build_parser().parse_args(["lut", "build", "--space", "fmnist28", "--out", "x"])
    for field in RESUME_FIELDS:
        if field != "opset":
            assert getattr(args, field) == getattr(DEFAULTS, field), field


def test_bad_request():
    from mobile_nas.cost.latency import LatencyTableError

    with pytest.raises(LatencyTableError, match="unknown precision 'fp16'"):
        TableRequest(precision="fp16")
    with pytest.raises(LatencyTableError, match="threads must be >= 1"):
        TableRequest(threads=0)
    assert dataclasses.asdict(TableRequest()) == {"precision": None, "threads": None,
                                                   "provider": None}
