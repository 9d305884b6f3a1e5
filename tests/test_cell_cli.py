"""Cell spaces (nasnet, nb201 and their scaled names) end to end through the CLI: space,
cost, lut build/check, transfer, train and export with the size knobs, bench."""

import json

import pytest

NASNET = ("normal:max_pool_3x3~1+sep_conv_7x7~1,sep_conv_3x3~0+sep_conv_3x3~0,identity~0+"
          "conv_1x7_7x1~2,avg_pool_3x3~2+max_pool_3x3~4,avg_pool_3x3~3+conv_1x7_7x1~3|reduce:"
          "identity~0+sep_conv_3x3~1,identity~1+sep_conv_3x3~1,max_pool_3x3~3+sep_conv_5x5~3,"
          "identity~0+avg_pool_3x3~0,sep_conv_7x7~0+dil_conv_3x3~2")
NB201 = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"
NB201_FMNIST = "nb201@n1-f8-1x28x28-k10"  # canonical name of nb201@n1-f8-r28-c1-k10


def _main(*args: str) -> int:
    """The CLI in-process, restoring torch's thread count (train --threads changes it)."""
    import torch

    from mobile_nas.cli import main

    threads = torch.get_num_threads()
    try:
        return main(list(args))
    finally:
        torch.set_num_threads(threads)


def _costs(arch: str, space: str):
    from mobile_nas.cost.model_costs import model_costs
    from mobile_nas.space import load_arch

    return model_costs(load_arch(arch, space))


def _one_line_error(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and fragment in err and "Traceback" not in err, err
    assert out == ""


@pytest.fixture(scope="module")
def nb201_ckpt(tmp_path_factory):
    """NB201's cell restacked for 1x28x28 images (N=1, F=8) with the train knobs, trained on
    128 images of the synthetic dataset (1x28x28, 10 classes, made in memory, so this runs
    without Debian's Fashion-MNIST) for one epoch."""
    out = tmp_path_factory.mktemp("nb201") / "model.pt"
    code = _main("train", NB201, "--space", "nb201", "--cells", "1", "--filters", "8",
                 "--input", "28", "--channels", "1", "--dataset", "synthetic",
                 "--epochs", "1", "--subset", "128", "--out", str(out), "--no-progress",
                 "--json", "--threads", "1")
    assert code == 0 and out.is_file()
    return out


@pytest.mark.parametrize("name,canonical,arch", [
    ("nasnet", "nasnet", NASNET), ("nasnet@n2-f12", "nasnet@n2-f12-1x28x28-k10", NASNET),
    ("nb201", "nb201", NB201), ("nb201@n1-f8-r28-c1-k10", NB201_FMNIST, NB201)])
def test_space_show_sample_and_cost(run_cli, name, canonical, arch):
    code, out, _ = run_cli("space", "show", "--space", name, "--json")
    info = json.loads(out)
    assert code == 0 and info["name"] == canonical and info["num_layer_keys"] > 0
    code, out, _ = run_cli("space", "sample", "--space", name, "--n", "2", "--seed", "1")
    assert code == 0 and len(out.split()) == 2
    code, out, _ = run_cli("cost", arch, "--space", name, "--json")
    record = json.loads(out)
    expected = _costs(arch, canonical)
    assert code == 0 and record["space"] == canonical
    assert (record["macs"], record["params"]) == (expected.macs, expected.params)


def test_transfer_reports_the_scaled_network(run_cli, tmp_path):
    code, out, _ = run_cli("transfer", NASNET, "--space", "nasnet", "--cells", "2",
                           "--filters", "12", "--input", "32", "--json")
    record = json.loads(out)
    target = "nasnet@n2-f12-1x32x32-k10"
    big = _costs(NASNET, target)
    assert code == 0 and record["target"]["space"] == target
    assert (record["target"]["macs"], record["target"]["params"]) == (big.macs, big.params)
    assert (record["target"]["cells"], record["target"]["filters"]) == (2, 12)
    assert record["source"]["macs"] == _costs(NASNET, "nasnet").macs
    assert record["ratio"]["macs"] == round(big.macs / record["source"]["macs"], 3)

    arch_json = tmp_path / "big.json"
    code, out, _ = run_cli("transfer", NASNET, "--space", "nasnet", "--cells", "2",
                           "--filters", "12", "--out", str(arch_json))
    assert code == 0 and "nasnet@n2-f12-1x28x28-k10" in out and "N=2 F=12" in out
    assert json.loads(arch_json.read_text())["space"] == "nasnet@n2-f12-1x28x28-k10"
    # the JSON file costs under any spelling of its space
    code, out, _ = run_cli("cost", str(arch_json), "--space", "nasnet@n2-f12", "--json")
    assert code == 0 and json.loads(out)["macs"] == _costs(NASNET, "nasnet@n2-f12").macs
    # knobs left out keep the source's values, also from a scaled source
    code, out, _ = run_cli("transfer", str(arch_json), "--input", "32", "--json")
    assert code == 0 and json.loads(out)["target"]["space"] == target


def test_lut_build_cost_and_check_both_cell_spaces(run_cli, tmp_path):
    fast = ("--rounds", "1", "--runs-per-round", "1", "--warmup", "0", "--no-progress")
    # nb201 at Fashion-MNIST size: the whole space (13 layer keys)
    nb_table = tmp_path / "nb.json"
    code, out, _ = run_cli("lut", "build", "--space", "nb201@n1-f8-r28-c1-k10", "--out",
                           str(nb_table), "--calibrate", "3", *fast, "--json")
    summary = json.loads(out)
    assert code == 0 and summary["space"] == NB201_FMNIST and summary["num_keys"] == 13
    cal = summary["calibration"]  # no large negative overhead (negative predictions)
    assert cal["overhead_ms"] >= -0.25 * min(cal["measured_ms"]) and cal["scale"] > 0
    code, out, _ = run_cli("cost", NB201, "--space", NB201_FMNIST, "--table", str(nb_table),
                           "--json")
    assert code == 0 and json.loads(out)["latency_ms"] > 0
    code, out, _ = run_cli("lut", "check", "--table", str(nb_table), "--n", "2",
                           "--rounds", "1", "--plot", "", "--no-progress", "--json")
    assert code == 0 and len(json.loads(out)["rows"]) >= 2

    # nasnet scaled (N=1, F=4): restricted to two architectures, plus the layers of three
    # random networks (seeded) so that 3 networks fit the calibration and 2 others check it
    other = NASNET.replace("sep_conv_7x7~1", "sep_conv_3x3~1")
    na_table = tmp_path / "na.json"
    code, out, err = run_cli("lut", "build", "--space", "nasnet@n1-f4", "--out", str(na_table),
                             "--arch", NASNET, "--arch", other, "--calibrate", "3",
                             "--held-out", "2", *fast, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert len(summary["sampled_archs"]) == 3 and summary["held_out_check"]["n"] == 2
    held = set(summary["held_out_check"]["archs"])
    # lut check offers the networks the calibration did not fit: the held-out ones
    code, out, err = run_cli("lut", "check", "--table", str(na_table), "--rounds", "1",
                             "--plot", "", "--no-progress", "--json")
    assert code == 0, err
    assert {r["arch"] for r in json.loads(out)["rows"]} == held
    code, out, _ = run_cli("lut", "check", "--table", str(na_table), "--arch", NASNET,
                           "--arch", other, "--rounds", "1", "--plot", "", "--no-progress",
                           "--json")
    rows = json.loads(out)["rows"]
    assert code == 0 and {r["arch"] for r in rows} == {NASNET, other} | held
    assert all(r["predicted_ms"] > 0 and r["measured_ms"] > 0 for r in rows)
    code, out, _ = run_cli("transfer", NASNET, "--space", "nasnet", "--filters", "4",
                           "--table", str(na_table), "--json")
    assert code == 0 and json.loads(out)["target"]["latency_ms"] > 0
    code, out, err = run_cli("cost", NASNET, "--space", "nasnet", "--table", str(na_table))
    _one_line_error(code, out, err, "the latency table is for space")


def test_train_with_knobs_export_and_bench(run_cli, nb201_ckpt, tmp_path):
    import onnx

    from mobile_nas.export.onnx_export import read_metadata
    from mobile_nas.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(nb201_ckpt)
    assert ckpt.space == NB201_FMNIST and ckpt.arch == NB201
    assert ckpt.dataset["name"] == "synthetic" and ckpt.metrics["train_images"] == 128

    out = tmp_path / "nb.onnx"
    code, stdout, err = run_cli("export", str(nb201_ckpt), "--out", str(out), "--runs", "0",
                                "--json")
    report = json.loads(stdout)
    assert code == 0, err
    assert report["space"] == NB201_FMNIST and report["max_abs_diff"] <= 1e-4
    assert report["parity_images"] > 0 and report["test_images"] == 1000  # synthetic test
    assert read_metadata(out)["space"] == NB201_FMNIST

    # the same weights at another input size (knobs as train's); checks on resized images
    out32 = tmp_path / "nb32.onnx"
    code, stdout, err = run_cli("export", str(nb201_ckpt), "--out", str(out32), "--input",
                                "32", "--runs", "0", "--json")
    report = json.loads(stdout)
    assert code == 0, err
    assert report["space"] == "nb201@n1-f8-1x32x32-k10" and report["max_abs_diff"] <= 1e-4
    dims = onnx.load(str(out32)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims][1:] == [1, 32, 32]

    code, stdout, _ = run_cli("bench", str(out32), "--runs", "5", "--warmup", "1", "--json")
    assert code == 0 and json.loads(stdout)["p50_ms"] > 0

    # knobs that need other weights: one clear line, nothing written
    for knobs, fragment in ((("--cells", "2"), "needs other weights"),
                            (("--channels", "3"), "1-channel images")):
        bad = tmp_path / "bad.onnx"
        code, stdout, err = run_cli("export", str(nb201_ckpt), "--out", str(bad), *knobs,
                                    "--runs", "0")
        _one_line_error(code, stdout, err, fragment)
        assert not bad.exists()


def test_cell_bad_input_one_line_exit_2(run_cli, tmp_path):
    m = str(tmp_path / "m.pt")
    cases = [
        # nb201's own skeleton is 3x32x32: say which knobs fit the data
        (("train", NB201, "--space", "nb201", "--dataset", "synthetic", "--epochs", "1",
          "--out", m), "--input 28 --channels 1"),
        (("train", "mobilenet_v2", "--cells", "2", "--epochs", "1", "--out", m),
         "has no size knobs"),
        (("train", NASNET, "--space", "nasnet", "--classes", "5", "--dataset", "synthetic",
          "--epochs", "1", "--out", m), "--classes 10"),
        (("transfer", NB201, "--space", "nasnet", "--cells", "2"), "NASNet architecture"),
        (("transfer", NASNET, "--space", "nasnet@n2-q3"), "bad token 'q3'"),
        (("cost", NASNET, "--space", "nasnet@n0"), "positive integers"),
        (("space", "show", "--space", "fmnist28@n2"), "has no size knobs"),
    ]
    for args, fragment in cases:
        code, out, err = run_cli(*args)
        _one_line_error(code, out, err, fragment)
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.slow
def test_nasnet_train_with_knobs_and_int8_export(run_cli, tmp_path):
    import torch

    from mobile_nas.train.checkpoint import load_checkpoint

    pt = tmp_path / "na.pt"
    threads = torch.get_num_threads()
    code, stdout, err = run_cli("train", NASNET, "--space", "nasnet", "--cells", "2",
                                "--filters", "12", "--dataset", "synthetic", "--epochs",
                                "1", "--subset", "256", "--out", str(pt), "--no-progress",
                                "--json", "--threads", "1")
    torch.set_num_threads(threads)
    assert code == 0, err
    assert json.loads(stdout)["space"] == "nasnet@n2-f12-1x28x28-k10"
    ckpt = load_checkpoint(pt)
    assert ckpt.space == "nasnet@n2-f12-1x28x28-k10" and ckpt.arch == NASNET
    out = tmp_path / "na.onnx"
    code, stdout, err = run_cli("export", str(pt), "--out", str(out), "--int8",
                                "--calibration-images", "64", "--runs", "5", "--json")
    report = json.loads(stdout)
    assert code == 0, err
    assert report["max_abs_diff"] <= 1e-4 and report["int8"]["accuracy_drop"] <= 0.01
    assert (tmp_path / "na.int8.onnx").is_file()
