import json
import os
import subprocess
import sys
import sysconfig

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from mobile_nas.export.deploy import export_checkpoint
from mobile_nas.export.metadata import REQUIRED_KEYS, predicted_latency
from mobile_nas.export.onnx_export import DeployModel, read_metadata
from mobile_nas.train.checkpoint import load_checkpoint
from mobile_nas.train.data import load_dataset
from tests.export.conftest import SYNTHETIC_TEST_IMAGES


@pytest.fixture(scope="module")
def exported(trained_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    report = export_checkpoint(trained_ckpt, out, int8=True, time_runs=20)
    return report, out


def test_fp32_export_is_checked_and_matches_pytorch_on_test_images(exported, trained_ckpt):
    report, out = exported
    assert report.max_abs_diff <= 1e-4 and report.parity_images == 256
    onnx.checker.check_model(str(out), full_check=True)
    ckpt = load_checkpoint(trained_ckpt)
    # the same network, through onnxruntime, scores what PyTorch scored on the test split
    assert report.test_images == SYNTHETIC_TEST_IMAGES
    assert abs(report.test_accuracy - ckpt.metrics["test_accuracy"]) <= 0.002
    assert report.test_accuracy > 0.7  # trained, not random (10 classes)


def test_metadata_and_dynamic_batch(exported, trained_ckpt):
    report, out = exported
    ckpt = load_checkpoint(trained_ckpt)
    meta = read_metadata(out)
    assert set(REQUIRED_KEYS) <= set(meta)
    assert meta["arch"] == ckpt.arch and meta["space"] == "fmnist28"
    assert float(meta["accuracy"]) == pytest.approx(ckpt.metrics["test_accuracy"], abs=1e-6)
    assert json.loads(meta["labels"]) == [f"class{i}" for i in range(10)] == list(ckpt.classes)
    assert "[0,1]" in meta["input_format"]
    # the server profile records onnxruntime's mobile analysis too: a dynamic batch is what
    # keeps NNAPI and CoreML off it (see test_mobile_export.py for the mobile profile)
    assert meta["profile"] == "server" and report.profile == "server"
    usability = json.loads(meta["mobile_usability"])
    assert usability["nnapi"]["partitions"] == 0
    assert report.mobile_usability["nnapi"]["dynamic_shape_nodes"] > 0
    predicted = predicted_latency(ckpt.architecture())  # the shipped table covers fmnist28
    assert predicted is not None and predicted["latency_ms"] > 0
    assert float(meta["latency_ms"]) == pytest.approx(predicted["latency_ms"], rel=1e-3)
    assert report.predicted_latency_ms == pytest.approx(predicted["latency_ms"], rel=1e-3)
    assert meta["latency_statistic"] == predicted["statistic"]  # what latency_ms is
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    assert inp.shape[1:] == [1, 28, 28] and not isinstance(inp.shape[0], int)
    for n in (1, 7):
        x = np.random.default_rng(n).random((n, 1, 28, 28), dtype=np.float32)
        assert sess.run(None, {inp.name: x})[0].shape == (n, 10)


def test_int8_is_quantized_accurate_and_timed(exported):
    report, _ = exported
    q = report.int8
    assert q is not None and q.accuracy_drop <= 0.01
    model = onnx.load(q.path)
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    meta = {p.key: p.value for p in model.metadata_props}
    assert float(meta["accuracy"]) == pytest.approx(q.test_accuracy, abs=1e-6)
    assert "int8 static QDQ" in meta["quantization"]
    t = report.timing
    assert t["fp32"]["runs"] == t["int8"]["runs"] == 20
    assert t["speedup"] == pytest.approx(t["fp32"]["p50_ms"] / t["int8"]["p50_ms"])


_PLAIN = """
import importlib.util, json, sys
sys.path.append(sys.argv[1])  # site-packages, without its .pth hooks (no editable installs)
assert importlib.util.find_spec("mobile_nas") is None, "mobile_nas must not be importable"
import numpy as np
import onnxruntime as ort
sess = ort.InferenceSession(sys.argv[2], providers=["CPUExecutionProvider"])
meta = sess.get_modelmeta().custom_metadata_map
x = np.load(sys.argv[3])
logits = sess.run(None, {sess.get_inputs()[0].name: x})[0]
print(json.dumps({"pred": logits.argmax(1).tolist(), "labels": json.loads(meta["labels"]),
                  "arch": meta["arch"], "modules": sorted(m for m in sys.modules
                                                          if m.startswith("mobile"))}))
"""


def test_exported_file_runs_in_plain_onnxruntime_without_mobile_nas(exported, trained_ckpt,
                                                                     tmp_path):
    import torch

    _, out = exported
    data = load_dataset("synthetic")
    images = data.test.images[:64]
    np.save(tmp_path / "x.npy", (images.float() / 255).numpy())
    ckpt = load_checkpoint(trained_ckpt)
    with torch.inference_mode():
        expected = DeployModel(ckpt.build_model(), ckpt.mean, ckpt.std)(
            images.float() / 255).argmax(1).tolist()
    script = tmp_path / "plain.py"
    script.write_text(_PLAIN)
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-I", "-S", str(script),
                           sysconfig.get_paths()["purelib"], str(out), str(tmp_path / "x.npy")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["modules"] == [] and result["arch"] == ckpt.arch
    assert result["labels"] == list(ckpt.classes)
    assert result["pred"] == expected


def test_predicted_latency_comes_from_the_table(tmp_path):
    from mobile_nas.cost.latency import LatencyTable, shipped_table_path
    from mobile_nas.space import get_space

    path = shipped_table_path("fmnist28")
    assert path is not None, "the fmnist28 table ships in latency_tables/"
    table = LatencyTable.load(path)
    space = get_space("fmnist28")
    arch = space.sample(np.random.default_rng(0))
    assert not table.missing(space.layers(arch))  # the shipped table covers the whole space
    got = predicted_latency(arch)
    assert got["latency_ms"] > 0 and got["table"] == str(path)
    # what the table predicts: the legacy shipped table its own "cpu-clock min" until rebuilt
    assert got["statistic"] == table.predicts == table.prediction_statistic.name
    from mobile_nas.errors import MobileNasError

    with pytest.raises(MobileNasError):  # an explicit table that is missing is an error
        predicted_latency(arch, tmp_path / "none.json")
