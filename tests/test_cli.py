import json
import subprocess
import sys

FMNIST_ARCH = "mb6_k3_n1_c16_relu|mb3_k5_n2_c24_relu|ds_k3_n1_c40_hswish_se|mb6_k7_n1_c64_relu"


def test_space_show_and_json(run_cli):
    code, out, _ = run_cli("space", "show", "--space", "fmnist28")
    assert code == 0 and "s0.kernel" in out and "distinct layers" in out
    code, out, _ = run_cli("space", "show", "--space", "mobile224", "--json")
    info = json.loads(out)
    assert info["name"] == "mobile224" and info["size"] > 1e9
    assert set(info["reference_archs"]) == {"mobilenet_v2", "mnasnet1_0"}
    code, out, _ = run_cli("space", "show", "--list", "--json")
    assert {"fmnist28", "mobile224"} <= set(json.loads(out))


def test_space_sample_is_seeded_one_string_a_line(run_cli):
    _, first, _ = run_cli("space", "sample", "--space", "fmnist28", "--n", "5", "--seed", "3")
    _, again, _ = run_cli("space", "sample", "--space", "fmnist28", "--n", "5", "--seed", "3")
    lines = first.strip().splitlines()
    assert first == again and len(lines) == 5
    from mobile_nas.space import get_space

    for line in lines:
        assert get_space("fmnist28").decode(line).to_string() == line


def test_cost_json_of_reference_and_string(run_cli):
    code, out, _ = run_cli("cost", "mnasnet1_0", "--space", "mobile224", "--json")
    record = json.loads(out)
    assert code == 0 and record["params"] == 4_383_312 and record["macs"] == 314_415_872
    code, out, _ = run_cli("cost", FMNIST_ARCH, "--space", "fmnist28", "--json")
    assert code == 0 and json.loads(out)["arch"] == FMNIST_ARCH
    code, out, _ = run_cli("cost", FMNIST_ARCH, "--space", "fmnist28")
    assert "fused multiply-add" in out


def test_cost_predicts_with_the_spaces_shipped_table_and_names_it(run_cli):
    from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, shipped_table_path
    from mobile_nas.space import load_arch

    table = shipped_table_path("fmnist28")
    want = LatencyPredictor(LatencyTable.load(table)).predict(
        load_arch(FMNIST_ARCH, "fmnist28")).total_ms
    code, out, err = run_cli("cost", FMNIST_ARCH, "--space", "fmnist28")
    assert code == 0 and err == ""
    (line,) = [s for s in out.splitlines() if s.startswith("latency_ms")]
    assert f"{want:.3f} ms (predicted" in line and line.endswith(f"table {table.name})")
    code, out, _ = run_cli("cost", FMNIST_ARCH, "--space", "fmnist28", "--json")
    record = json.loads(out)
    assert record["latency_ms"] == round(want, 4) and record["latency_table"] == str(table)
    code, out, _ = run_cli("cost", FMNIST_ARCH, "--space", "fmnist28", "--no-table", "--json")
    assert code == 0 and "latency_ms" not in json.loads(out)


def test_cost_without_a_usable_shipped_table_says_why_and_still_costs(run_cli):
    code, out, err = run_cli("cost", FMNIST_ARCH, "--space", "fmnist28", "--threads", "3")
    assert code == 0 and "macs" in out and "latency_ms" not in out
    assert err.startswith("note: no predicted latency: the shipped table fmnist28.json")
    assert "threads 3" in err and err.count("\n") == 1
    nb201 = ("|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|"
             "skip_connect~1|none~2|")
    code, out, err = run_cli("cost", nb201, "--space", "nb201@n1-f8-r28-c1-k10")
    assert code == 0 and "latency_ms" not in out
    assert "no latency table is shipped for space 'nb201@n1-f8-1x28x28-k10'" in err
    code, out, err = run_cli("cost", FMNIST_ARCH, "--space", "fmnist28", "--table", "t.json",
                             "--no-table")
    assert code == 2 and "not allowed with argument" in err


def test_bad_input_one_line_exit_2(run_cli, tmp_path):
    bad = FMNIST_ARCH.replace("k5", "k4")
    cases = [
        (("cost", bad, "--space", "fmnist28"), "'k4'"),
        (("cost", FMNIST_ARCH, "--space", "nope"), "unknown search space 'nope'"),
        (("cost", str(tmp_path / "missing.json")), "does not exist"),
        (("space", "sample", "--space", "nope"), "unknown search space"),
    ]
    for args, fragment in cases:
        code, out, err = run_cli(*args)
        assert code == 2, args
        assert err.count("\n") == 1 and fragment in err and "Traceback" not in err
        assert out == ""


def test_argparse_errors_exit_2(run_cli):
    code, _, err = run_cli("space", "sample", "--space", "fmnist28", "--n", "0")
    assert code == 2 and "positive integer" in err


def test_module_entry_point_and_debug_traceback():
    bad = FMNIST_ARCH.replace("relu|", "relu9|", 1)
    proc = subprocess.run([sys.executable, "-m", "mobile_nas", "cost", bad, "--space",
                           "fmnist28"], capture_output=True, text=True)
    assert proc.returncode == 2 and "relu9" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "mobile_nas", "--debug", "cost", bad,
                           "--space", "fmnist28"], capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
