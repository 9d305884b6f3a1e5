"""``mobile-nas export --mobile``: fixed-shape NNAPI/CoreML graph, ORT format, INT8 for
mobile, onnxruntime's usability analysis in the metadata and output, ``--require``."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from mobile_nas.export.onnx_export import read_metadata
from mobile_nas.export.usability import PROVIDERS
from mobile_nas.train.checkpoint import load_checkpoint
from tests.export.conftest import SYNTHETIC_TEST_IMAGES

FILES = ("m.onnx", "m.ort", "m.int8.onnx", "m.int8.ort", "m.required_operators.config")


@pytest.fixture(scope="module")
def mobile(trained_ckpt, tmp_path_factory):
    """``export --mobile --int8 --require nnapi --require coreml --json`` on a trained net."""
    from mobile_nas.cli import main

    out = tmp_path_factory.mktemp("mobile") / "m.onnx"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["export", str(trained_ckpt), "--out", str(out), "--mobile", "--int8",
                     "--require", "nnapi", "--require", "coreml", "--calibration-images",
                     "128", "--runs", "10", "--json"])
    assert code == 0
    return json.loads(stdout.getvalue()), out


def test_mobile_files_shapes_and_metadata(mobile):
    report, out = mobile
    folder = out.parent
    assert all((folder / f).is_file() for f in FILES)
    assert report["profile"] == "mobile" and report["ort"]["path"] == str(folder / "m.ort")
    model = onnx.load(str(out))
    dims = [[d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in (model.graph.input[0], model.graph.output[0])]
    assert dims == [[1, 1, 28, 28], [1, 10]]
    meta = read_metadata(out)
    assert meta["profile"] == "mobile" and "[1,1,28,28]" in meta["input_format"]
    assert set(json.loads(meta["deploy_files"])) == set(FILES)
    usability = json.loads(meta["mobile_usability"])
    for pid in PROVIDERS:
        assert usability[pid]["partitions"] == 1 and usability[pid]["coverage"] == 1.0
        assert report["mobile_usability"][pid]["whole_graph"]
    # the .ort carries the same metadata, so a phone app can read which file is which
    sess = ort.InferenceSession(str(folder / "m.ort"), providers=["CPUExecutionProvider"])
    ort_meta = sess.get_modelmeta().custom_metadata_map
    assert ort_meta["arch"] == meta["arch"] and ort_meta["deploy_files"] == meta["deploy_files"]
    assert sess.get_inputs()[0].shape == [1, 1, 28, 28]
    # the operator config is one onnxruntime's reduced build reads
    from onnxruntime.tools.reduced_build_config_parser import parse_config

    ops, _ = parse_config(str(folder / "m.required_operators.config"))
    assert "Conv" in set().union(*ops["ai.onnx"].values())


def test_mobile_graph_matches_pytorch_and_keeps_the_accuracy(mobile, trained_ckpt):
    report, _ = mobile
    ckpt = load_checkpoint(trained_ckpt)
    assert report["max_abs_diff"] <= 1e-4 and report["parity_images"] == 256
    assert report["ort"]["max_abs_diff"] <= 1e-4
    assert report["test_images"] == SYNTHETIC_TEST_IMAGES
    assert abs(report["test_accuracy"] - ckpt.metrics["test_accuracy"]) <= 0.001


def test_onnxruntimes_own_tool_reports_the_same_coverage(mobile):
    report, out = mobile
    proc = subprocess.run(
        [sys.executable, "-m", "onnxruntime.tools.check_onnx_model_mobile_usability",
         str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    for pid in PROVIDERS:
        c = report["mobile_usability"][pid]
        m = re.search(rf"(\d+) partitions with a total of (\d+)/(\d+) nodes can be handled by "
                      rf"the {c['provider']} EP", text)
        assert m, text
        assert tuple(map(int, m.groups())) == (c["partitions"], c["supported_nodes"], c["nodes"])


def test_mobile_int8_is_per_channel_symmetric_qdq_that_nnapi_takes(mobile):
    report, _ = mobile
    q = report["int8"]
    assert q["accuracy_drop"] <= 0.01 and "per-channel" in q["calibration"]
    model = onnx.load(q["path"])
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    weights = per_channel = 0
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        data, scale = inits[node.input[0]], inits[node.input[1]]
        zero = inits[node.input[2]] if len(node.input) > 2 else np.zeros(1, np.int8)
        if data.dtype == np.int8 and data.ndim >= 2:  # conv and linear weights
            weights += 1
            per_channel += scale.size == data.shape[0] > 1
            assert not zero.any()  # symmetric: zero point 0
    assert weights >= 5 and per_channel == weights
    acts = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert acts and all(z.dtype == np.uint8 for z in acts)
    nnapi = q["mobile_usability"]["nnapi"]
    assert nnapi["partitions"] == 1 and nnapi["coverage"] == 1.0
    # CoreML has no QuantizeLinear/DequantizeLinear: the report says so rather than hiding it
    assert "ai.onnx:DequantizeLinear" in q["mobile_usability"]["coreml_mlprogram"][
        "unsupported_ops"]
    assert report["ort"]["int8_top1_agreement"] >= 0.99
    assert report["timing"]["int8"]["runs"] == 10


def test_require_fails_in_one_line_when_a_provider_would_split_the_graph(
        run_cli, trained_ckpt, tmp_path, monkeypatch):
    from torch import nn

    import mobile_nas.export.mobile as mobile_profile

    # without its rewrite, hard-swish exports as HardSigmoid, which NNAPI does not take
    monkeypatch.delitem(mobile_profile._REWRITES, nn.Hardswish)
    out = tmp_path / "m.onnx"
    code, stdout, err = run_cli("export", str(trained_ckpt), "--out", str(out), "--mobile",
                                "--require", "nnapi", "--runs", "0", "--json")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("mobile-nas: error: ") and stdout == ""
    assert "NNAPI would not take the whole graph" in err and "HardSigmoid" in err
    assert not out.exists() and not (tmp_path / "m.ort").exists()


def test_mobile_text_output_shows_the_usability_summary(run_cli, trained_ckpt, tmp_path):
    out = tmp_path / "m.onnx"
    code, stdout, err = run_cli("export", str(trained_ckpt), "--out", str(out), "--mobile",
                                "--require", "coreml-mlprogram", "--runs", "0")
    assert code == 0, err
    for label in ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram"):
        assert re.search(rf"{label}: 1 partition, (\d+)/\1 nodes \(100%\)", stdout), stdout
    assert "mobile profile" in stdout and str(tmp_path / "m.ort") in stdout
    assert "onnxruntime mobile usability" in err  # progress on stderr


@pytest.mark.parametrize("args, fragment", [
    (("--require", "nnapi"), "needs the mobile profile (--mobile)"),
    (("--mobile", "--require", "tpu"), "invalid choice: 'tpu'"),
])
def test_require_bad_input_is_one_line_exit_2(run_cli, trained_ckpt, tmp_path, args, fragment):
    out = tmp_path / "m.onnx"
    code, _, err = run_cli("export", str(trained_ckpt), "--out", str(out), *args, "--runs", "0")
    assert code == 2 and err.count("\n") == 1 and fragment in err, err
    assert not out.exists()


def test_mobile_out_must_name_the_onnx_file(run_cli, trained_ckpt, tmp_path):
    code, _, err = run_cli("export", str(trained_ckpt), "--out", str(tmp_path / "m.ort"),
                           "--mobile", "--runs", "0")
    assert code == 2 and err.count("\n") == 1 and "writes the .ort beside it" in err
    assert not any(tmp_path.iterdir())
