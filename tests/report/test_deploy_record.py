"""``RUN_DIR/deploy.json`` through :class:`DeployRecord`: the file the demo wrote before the
record was a dataclass still loads and writes back byte for byte, bad files are one error
line, and ``mobile-nas report`` shows what the record holds."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from mobile_nas.export.deploy import ExportReport
from mobile_nas.report.deploy import DEPLOY_FILE, DeployRecord
from mobile_nas.report.run import ReportError

#: A demo RUN_DIR written by release d8852eb (see README.md there).
OLD_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "demo_run_v1"


def _old() -> dict:
    return json.loads((OLD_RUN / DEPLOY_FILE).read_text())


def test_old_file_loads_with_its_values():
    d = DeployRecord.load(OLD_RUN / DEPLOY_FILE)
    assert d.arch == ("ds_k3_n2_c16_relu|ds_k3_n3_c24_relu|ds_k3_n1_c40_relu_se|"
                      "mb3_k5_n3_c64_hswish_se")
    assert (d.space, d.macs, d.params) == ("fmnist28", 2086552, 146482)
    assert (d.train.epochs, d.train.train_images, d.train.path) == (1, 500, "demo_out/model.pt")
    assert d.export.profile == "server" and d.export_mobile.profile == "mobile"
    assert d.export.int8 is not None and d.export.int8.calibration == "minmax, per-channel"
    assert d.export.timing["fp32"]["runs"] == 200
    assert d.export_mobile.ort["path"] == "demo_out/model.mobile.ort"
    assert [c.name for c in d.references] == ["searched", "fmnist28_mnasnet",
                                              "fmnist28_mobilenet_v2"]
    assert d.references[0].ground_truth_val is None
    assert d.references[1].ground_truth_val == pytest.approx(0.8716, abs=1e-4)
    assert list(d.stage_seconds) == ["search", "train", "export", "report"]
    assert d.total_seconds == pytest.approx(sum(d.stage_seconds.values()), rel=0.2)
    assert d.predicted_statistic is None and d.latency_table is None  # not recorded then


def test_round_trip_is_the_old_file_byte_for_byte(tmp_path):
    d = DeployRecord.load(OLD_RUN / DEPLOY_FILE)
    assert d.to_json() == _old()
    d.save(tmp_path / DEPLOY_FILE)
    assert (tmp_path / DEPLOY_FILE).read_bytes() == (OLD_RUN / DEPLOY_FILE).read_bytes()
    assert DeployRecord.load(tmp_path / DEPLOY_FILE) == d


def test_record_before_the_report_has_no_total(tmp_path):
    d = replace(DeployRecord.load(OLD_RUN / DEPLOY_FILE), total_seconds=None)
    assert "total_seconds" not in d.to_json()
    d.save(tmp_path / "d.json")
    assert DeployRecord.load(tmp_path / "d.json").total_seconds is None


def test_predicted_statistic_and_table_are_recorded(tmp_path):
    d = replace(DeployRecord.load(OLD_RUN / DEPLOY_FILE), predicted_statistic="cpu-clock min",
                latency_table="/x/latency_tables/fmnist28.json")
    data = d.to_json()
    assert (data["predicted_statistic"], data["latency_table"]) == (
        "cpu-clock min", "/x/latency_tables/fmnist28.json")
    assert data["schema_version"] == 1
    d.save(tmp_path / DEPLOY_FILE)
    assert DeployRecord.load(tmp_path / DEPLOY_FILE) == d


def test_the_int8_prediction_is_recorded_and_shown(run_cli, tmp_path):
    d = replace(DeployRecord.load(OLD_RUN / DEPLOY_FILE), predicted_int8_ms=0.15,
                predicted_int8_statistic="wall-clock median",
                int8_latency_table="/x/latency_tables/fmnist28_int8.json")
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    d.save(run / DEPLOY_FILE)
    assert DeployRecord.load(run / DEPLOY_FILE) == d
    assert json.loads((run / DEPLOY_FILE).read_text())["predicted_int8_ms"] == 0.15
    code, out, err = run_cli("report", str(run), "--json")
    assert code == 0, err
    page = Path(json.loads(out)["html"]).read_text()
    assert ("predicted INT8 latency</th><td>0.150 ms (wall-clock median, table "
            "fmnist28_int8.json)") in page


def test_export_report_round_trip_without_int8():
    data = _old()["export"] | {"int8": None, "int8_error": "dropped: lost 3 points"}
    report = ExportReport.from_json(data)
    assert report.int8 is None and report.to_json() == data


def _bad(data, tmp_path) -> str:
    path = tmp_path / DEPLOY_FILE
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(ReportError) as info:
        DeployRecord.load(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg, msg
    return msg


@pytest.mark.parametrize("version", [2, 0, None, "1"])
def test_unknown_schema_is_refused_in_one_line(tmp_path, version):
    data = _old() | {"schema_version": version}
    msg = _bad(data, tmp_path)
    assert f"schema_version {version!r} is not one this release reads (1)" in msg


def test_missing_schema_is_refused(tmp_path):
    data = _old()
    del data["schema_version"]
    assert "schema_version None" in _bad(data, tmp_path)


@pytest.mark.parametrize("edit, needle", [
    (lambda d: d.pop("train"), "deploy record lacks 'train'"),
    (lambda d: d.update(extra=1), "deploy record has unknown keys 'extra'"),
    (lambda d: d.update(macs="2M"), "'macs' must be int, got '2M'"),
    (lambda d: d.update(macs=True), "'macs' must be int"),
    (lambda d: d.update(total_seconds=float("nan")), "'total_seconds' must be float or null"),
    (lambda d: d["train"].pop("epochs"), "train lacks 'epochs'"),
    (lambda d: d["export"].update(test_accuracy="high"),
     "export report: 'test_accuracy' must be float, got 'high'"),
    (lambda d: d["export"]["int8"].pop("calibration"), "INT8 result lacks 'calibration'"),
    (lambda d: d["export_mobile"].update(path=None), "export report: 'path' must be str"),
    (lambda d: d.update(references={}), "'references' must be a list"),
    (lambda d: d["references"][0].update(measured_ms=None),
     "compared network: 'measured_ms' must be float, got None"),
    (lambda d: d.update(stage_seconds={"search": "9 s"}), "'stage_seconds' must map"),
    (lambda d: d.update(predicted_statistic=1),
     "'predicted_statistic' must be str or null, got 1"),
    (lambda d: d.update(predicted_int8_ms="fast"),
     "'predicted_int8_ms' must be float or null, got 'fast'"),
])
def test_bad_records_name_the_key(tmp_path, edit, needle):
    data = _old()
    edit(data)
    assert needle in _bad(data, tmp_path)


@pytest.mark.parametrize("text, needle", [("{", "cannot read"), ("[]", "expected a JSON object")])
def test_unreadable_files(tmp_path, text, needle):
    assert needle in _bad(text, tmp_path)


def test_report_shows_the_old_record(run_cli, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    code, out, err = run_cli("report", str(run), "--json")
    assert code == 0, err
    page = Path(json.loads(out)["html"]).read_text()
    section = page[page.index("Trained and exported"):page.index("Pareto front")]
    for text in ("1 epochs on 500 images", "demo_out/model.onnx", "1.86e-08 on 256 test images",
                 "predicted latency</th><td>0.301 ms", "demo_out/model.int8.onnx",
                 "p50 0.096 ms, p90 0.106 ms", "x0.72", "2,086,552", "146,482"):
        assert text in section, text


def test_report_names_the_predicted_statistic_and_the_table(run_cli, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    (run / DEPLOY_FILE).write_text(json.dumps(_old() | {
        "predicted_statistic": "cpu-clock min",
        "latency_table": "/x/latency_tables/fmnist28.json"}))
    code, out, err = run_cli("report", str(run), "--json")
    assert code == 0, err
    page = Path(json.loads(out)["html"]).read_text()
    assert ("predicted latency</th><td>0.301 ms (cpu-clock min, table fmnist28.json)"
            in page)
    assert "measured fp32 latency, wall clock (batch 1, 1 thread)</th><td>p50 0.096 ms" in page


def test_report_refuses_a_deploy_json_of_another_schema(run_cli, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    (run / DEPLOY_FILE).write_text(json.dumps(_old() | {"schema_version": 7}))
    code, out, err = run_cli("report", str(run))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "schema_version 7" in err and "Traceback" not in err
