"""The lut, cost --table/--measure and bench commands end to end (small key sets)."""

import json
import zipfile

import pytest

from mobile_nas.cost.latency import Calibration, HeldOutCheck, LatencyTable

from .conftest import SMALL_ARCH, SMALL_VARIANTS


def test_cost_with_table_and_measure(run_cli, small_table_path):
    code, out, err = run_cli("cost", SMALL_ARCH, "--space", "fmnist28", "--table",
                             str(small_table_path), "--measure", "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert rec["latency_ms"] > 0 and rec["measured_ms"] > 0 and rec["macs"] > 0
    # an uncalibrated table of CPU-clock medians: a plain layer sum, measured alike
    assert rec["latency_statistic"] == "uncalibrated sum of layer cpu-clock medians"
    assert rec["measured_statistic"] == "cpu-clock median" and rec["threads"] == 1
    code, out, _ = run_cli("cost", SMALL_ARCH, "--space", "fmnist28", "--table",
                           str(small_table_path))
    assert code == 0 and "latency_ms" in out
    assert "(predicted uncalibrated sum of layer cpu-clock medians, 1 thread(s)" in out


@pytest.fixture
def checked_table(tmp_path, small_table_path):
    """The small table with a (made-up) calibration checked on held-out networks."""
    cal = Calibration(overhead_ms=0.02, scale=1.1, per_layer_ms=0.0, coefficients=2,
                      archs=tuple(SMALL_VARIANTS[:3]), measured_ms=(0.3, 0.2, 0.25),
                      held_out=HeldOutCheck(archs=tuple(SMALL_VARIANTS[3:5]),
                                            measured_ms=(0.2, 0.3), predicted_ms=(0.21, 0.3)))
    path = tmp_path / "checked.json"
    LatencyTable.load(small_table_path).with_calibration(cal).save(path)
    return path


def test_cost_and_bench_name_the_same_statistic(run_cli, checked_table, tmp_path):
    code, out, err = run_cli("cost", SMALL_ARCH, "--space", "fmnist28", "--table",
                             str(checked_table), "--json")
    assert code == 0, err
    cost = json.loads(out)
    table = LatencyTable.load(checked_table)
    assert cost["latency_statistic"] == "wall-clock median"
    assert cost["latency_ms"] == round(table.calibration.apply(
        sum(table.entries[k.id].median_ms for k in table_keys(SMALL_ARCH)),
        len(table_keys(SMALL_ARCH))), 4)
    from mobile_nas.cost.latency.export import export_arch_onnx
    from mobile_nas.space import get_space

    model = tmp_path / "m.onnx"
    model.write_bytes(export_arch_onnx(get_space("fmnist28").decode(SMALL_ARCH)))
    code, out, err = run_cli("bench", str(model), "--runs", "3", "--warmup", "0", "--json")
    assert code == 0, err
    bench = json.loads(out)
    assert bench["latency_statistic"] == cost["latency_statistic"]
    assert bench["latency_ms"] == bench["p50_ms"]
    code, out, _ = run_cli("bench", str(model), "--runs", "3", "--warmup", "0")
    assert "ms (wall-clock median, the statistic 'cost' predicts)" in out


def table_keys(arch: str):
    from mobile_nas.space import get_space

    space = get_space("fmnist28")
    return space.runtime_layers(space.decode(arch))


@pytest.mark.parametrize("flags, words", [
    (("--threads", "2"), "threads 1, not the requested threads 2"),
    (("--precision", "int8"), "precision fp32, not the requested precision int8"),
    (("--provider", "XnnpackExecutionProvider"), "provider CPUExecutionProvider"),
])
def test_cost_refuses_a_table_for_other_settings(run_cli, checked_table, flags, words):
    code, out, err = run_cli("cost", SMALL_ARCH, "--space", "fmnist28", "--table",
                             str(checked_table), *flags)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert words in err and "mobile-nas lut build --space fmnist28" in err


def test_cost_refuses_an_unchecked_calibration(run_cli, checked_table, tmp_path):
    data = json.loads(checked_table.read_text())
    data["calibration"]["held_out"] = None
    bad = tmp_path / "unchecked.json"
    bad.write_text(json.dumps(data))
    code, _, err = run_cli("cost", SMALL_ARCH, "--space", "fmnist28", "--table", str(bad))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "without a held-out check" in err and f"--out {bad} --resume" in err


def test_cost_missing_keys_one_line(run_cli, small_table_path):
    code, out, err = run_cli("cost", "mobilenet_v2", "--table", str(small_table_path))
    assert code == 2 and "mobile224" in err and len(err.strip().splitlines()) == 1
    other = "ds_k3_n1_c16_relu|ds_k3_n1_c24_relu|ds_k3_n1_c40_relu|ds_k3_n1_c64_relu"
    code, out, err = run_cli("cost", other, "--space", "fmnist28", "--table",
                             str(small_table_path))
    assert code == 2 and "lut build --space fmnist28 --arch" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content", ['{"schema_version": 1, "spa', '{"schema_version": 2}'])
def test_cost_bad_table_one_line(run_cli, tmp_path, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = run_cli("cost", SMALL_ARCH, "--space", "fmnist28", "--table", str(bad))
    assert code == 2 and str(bad) in err and "Traceback" not in err


def test_lut_build_resume_and_calibrate(run_cli, tmp_path):
    """Real timings (only their structure is checked); the five --arch networks share the
    small arch's 9 keys, so no random networks are needed to fit 3 and hold 2 out."""
    out = tmp_path / "t.json"
    archs = [a for v in SMALL_VARIANTS[:5] for a in ("--arch", v)]
    args = ("lut", "build", "--space", "fmnist28", *archs, "--out", str(out),
            "--rounds", "2", "--clock", "cpu", "--chunk", "4", "--calibrate", "3",
            "--held-out", "2", "--no-progress")
    code, stdout, err = run_cli(*args, "--json")
    assert code == 0, err
    rec = json.loads(stdout)
    assert rec["num_keys"] == 9 and rec["calibration"]["archs"] == SMALL_VARIANTS[:3]
    assert rec["held_out_check"]["archs"] == SMALL_VARIANTS[3:5]
    assert rec["held_out_check"]["n"] == 2 and rec["sampled_archs"] == []
    assert rec["predicts"] == "wall-clock median" and rec["calibrated_now"]
    before = json.loads(out.read_text())
    assert len(before["metadata"]["sentinel"]["runs"]) == 1
    code, stdout, err = run_cli(*args, "--resume")  # nothing left to time
    assert code == 0, err
    after = json.loads(out.read_text())
    assert after["entries"] == before["entries"]
    assert after["calibration"] == before["calibration"]  # checked: kept
    lines = stdout.strip().splitlines()
    assert "(kept)" in lines[-2]
    assert lines[-1].startswith("held-out check on 2 networks not used in the fit: MAPE ")
    assert "within ±5%" in lines[-1] and "within ±10%" in lines[-1]


def test_lut_build_refuses_too_few_calibration_networks(run_cli, tmp_path):
    out = tmp_path / "t.json"
    for flags, words in ((("--calibrate", "2"), "at least 3 networks to fit"),
                         (("--held-out", "1"), "and 2 held out")):
        code, _, err = run_cli("lut", "build", "--space", "fmnist28", "--arch", SMALL_ARCH,
                               "--out", str(out), *flags)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # refused before any timing


def test_lut_build_bad_input(run_cli, tmp_path):
    code, _, err = run_cli("lut", "build", "--space", "nope", "--out", str(tmp_path / "t.json"))
    assert code == 2 and "nope" in err
    code, _, err = run_cli("lut", "build", "--space", "fmnist28", "--arch", "garbage",
                           "--out", str(tmp_path / "t.json"))
    assert code == 2 and "garbage" in err
    code, _, err = run_cli("lut", "build", "--space", "fmnist28", "--out",
                           str(tmp_path / "missing" / "t.json"))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "t.json").exists()


def test_lut_bundle_and_import_cli(run_cli, tmp_path):
    """CLI plumbing; the runner round trip itself is in test_bundle.py."""
    zpath = tmp_path / "b.zip"
    archs = [a for v in SMALL_VARIANTS[:5] for a in ("--arch", v)]
    code, out, err = run_cli("lut", "bundle", "--space", "fmnist28", *archs,
                             "--out", str(zpath), "--calibrate", "3", "--held-out", "2",
                             "--no-progress", "--json")
    assert code == 0, err
    rec = json.loads(out)
    assert (rec["layer_models"], rec["fit_models"], rec["held_out_models"]) == (9, 3, 2)
    with zipfile.ZipFile(zpath) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    # onnxruntime_perf_test style text results: FILE MEDIAN_MS
    perf = tmp_path / "perf.txt"
    perf.write_text("".join(f"{m['file']} {0.05 + 0.01 * i}\n"
                            for i, m in enumerate(manifest["models"])))
    table = tmp_path / "imported.json"
    code, out, err = run_cli("lut", "import", str(perf), "--bundle", str(zpath), "--out",
                             str(table), "--device", "pixel-test")
    assert code == 0, err
    data = json.loads(table.read_text())
    assert data["metadata"]["device"] == "pixel-test" and len(data["entries"]) == 9
    assert data["calibration"]["archs"] == SMALL_VARIANTS[:3]
    assert data["calibration"]["held_out"]["archs"] == SMALL_VARIANTS[3:5]
    # bad results: one line, exit 2, no table written
    perf.write_text(f"{manifest['models'][0]['file']} -3\n")
    bad_out = tmp_path / "bad.json"
    code, _, err = run_cli("lut", "import", str(perf), "--bundle", str(zpath), "--out",
                           str(bad_out))
    assert code == 2 and len(err.strip().splitlines()) == 1 and not bad_out.exists()
    trunc = tmp_path / "trunc.json"
    trunc.write_text('{"schema_version": 1, "kind": "mobile-nas-lut-res')
    code, _, err = run_cli("lut", "import", str(trunc), "--out", str(bad_out))
    assert code == 2 and "not valid JSON" in err and not bad_out.exists()


def test_bench_torchvision_classifier(run_cli, tmp_path):
    import torch
    import torchvision

    path = tmp_path / "squeezenet.onnx"
    model = torchvision.models.squeezenet1_1(num_classes=10).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False,
                      opset_version=17, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    code, out, err = run_cli("bench", str(path), "--runs", "10", "--warmup", "2", "--json")
    assert code == 0, err
    rec = json.loads(out)
    for key in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms"):
        assert rec[key] > 0 or key == "std_ms"
    assert rec["p50_ms"] <= rec["p99_ms"] and rec["runs"] == 10 and rec["threads"] == 1
    assert rec["latency_ms"] == rec["p50_ms"] and rec["latency_statistic"] == "wall-clock median"
    assert rec["machine"]["onnxruntime"] and rec["inputs"][0]["name"] == "x"


def test_bench_bad_input(run_cli, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    code, _, err = run_cli("bench", str(bad))
    assert code == 2 and "bad.onnx" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("bench", str(tmp_path / "missing.onnx"))
    assert code == 2 and "not found" in err


def test_lut_check_shipped_table(run_cli, tmp_path):
    png = tmp_path / "check.png"
    code, out, err = run_cli("lut", "check", "--table", "latency_tables/fmnist28.json",
                             "--n", "2", "--rounds", "2", "--plot", str(png), "--json")
    assert code == 0, err
    rec = json.loads(out)
    names = [r["name"] for r in rec["rows"]]  # the space's references, then 2 random ones
    assert names == ["fmnist28_mnasnet", "fmnist28_mobilenet_v2", "random0", "random1"]
    assert 0 <= rec["within_10"] <= 1
    assert all(r["measured_ms"] > 0 and r["predicted_ms"] > 0 for r in rec["rows"])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bench_vs_a_reference_reports_the_ratio_of_each_run(run_cli, tmp_path, monkeypatch):
    """The ratio arithmetic on a fake measurement (each run: the model 0.9x, then 0.92x,
    then 0.88x the reference): the median, the runs, and the FxREF verdict."""
    import mobile_nas.cost.latency.measure as measure
    from mobile_nas.cost.latency.export import export_arch_onnx
    from mobile_nas.space import get_space

    model = tmp_path / "m.onnx"
    model.write_bytes(export_arch_onnx(get_space("fmnist28").decode(SMALL_ARCH)))
    seen = []

    def fake(models, anchor, *, repeats, **kw):
        seen.append((list(models), anchor, repeats))
        per = ((0.9,), (0.92,), (0.88,))[:repeats]
        return measure.AnchoredRun(fractions=(0.9,), anchor_ms=0.2, retest_pct=1.48,
                                   repeats=repeats, per_repeat=per,
                                   anchor_per_repeat_ms=(0.2,) * repeats)

    monkeypatch.setattr(measure, "measure_models_anchored", fake)
    code, out, err = run_cli("bench", str(model), "--runs", "3", "--warmup", "0",
                             "--vs", "0.85xfmnist28_mnasnet", "--json")
    assert code == 0, err
    vs = json.loads(out)["vs"]
    assert (vs["reference"], vs["target_factor"], vs["ratio"]) == ("fmnist28_mnasnet", 0.85, 0.9)
    assert vs["ratios"] == [0.9, 0.92, 0.88] and vs["within_target"] is False
    assert vs["model_ms"] == pytest.approx(0.18) and vs["reference_ms"] == 0.2
    (models, anchor, repeats), = seen
    assert models == [str(model)] and repeats == 3 and isinstance(anchor, bytes)
    code, out, err = run_cli("bench", str(model), "--runs", "3", "--warmup", "0",
                             "--vs", "fmnist28_mnasnet")
    assert "vs fmnist28_mnasnet: 0.900x (runs 0.900, 0.920, 0.880; noise 1.48%)" in out


@pytest.mark.parametrize("vs, words", [
    ("nope", "--vs 'nope': reference 'nope' is an arch string without a space"),
    ("0xfmnist28_mnasnet", "--vs '0xfmnist28_mnasnet': factor '0'"),
])
def test_bench_vs_bad_reference_is_one_line(run_cli, tmp_path, vs, words):
    from mobile_nas.cost.latency.export import export_arch_onnx
    from mobile_nas.space import get_space

    model = tmp_path / "m.onnx"
    model.write_bytes(export_arch_onnx(get_space("fmnist28").decode(SMALL_ARCH)))
    code, out, err = run_cli("bench", str(model), "--runs", "2", "--warmup", "0", "--vs", vs)
    assert code == 2 and len(err.strip().splitlines()) == 1 and words in err, err
