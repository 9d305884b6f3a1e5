"""``mobile-nas search`` end to end (tiny supernet, synthetic data) and its bad input."""

import json

import pytest

from tests.search.conftest import synthetic_table_json


@pytest.fixture(scope="module")
def tiny_supernet(tmp_path_factory):
    from mobile_nas.models.supernet import MobileSupernet
    from mobile_nas.space import get_space
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.supernet import SupernetTrainConfig, train_supernet

    path = tmp_path_factory.mktemp("sn") / "supernet.pt"
    space = get_space("fmnist28")
    train_supernet(MobileSupernet(space), load_dataset("synthetic"),
                   SupernetTrainConfig(steps=3, batch_size=16, warmup_steps=1),
                   checkpoint_path=path, progress=False)
    return path


def _args(out, table, **over):
    args = {"--space": "fmnist28", "--dataset": "synthetic", "--strategy": "rl",
            "--latency-target-ms": "1000", "--table": str(table), "--trials": "3",
            "--out": str(out), "--preset": "quick"}
    args.update(over)
    flat = ["search", "--no-progress"]
    for k, v in args.items():
        if v is not None:
            flat += [k, v]
    return flat


def test_search_cli_end_to_end_and_resume(run_cli, tmp_path, table_path, tiny_supernet):
    out = tmp_path / "run"
    code, stdout, err = run_cli(*_args(out, table_path, **{"--supernet": str(tiny_supernet)}),
                                "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["trials"] == 3 and doc["best"]["feasible"] is True
    best = json.loads((out / "best.json").read_text())
    assert best["arch"] == doc["best"]["arch"] and 0 <= best["accuracy"] <= 1
    assert {p.name for p in out.iterdir()} >= {"best.json", "pareto.json", "trials.csv",
                                                "pareto.png", "study.db"}
    code, stdout, err = run_cli(*_args(out, table_path, **{"--supernet": str(tiny_supernet),
                                                           "--trials": "5"}), "--resume")
    assert code == 0, err
    assert "trials   5 in" in stdout
    assert len((out / "trials.csv").read_text().splitlines()) == 6


@pytest.mark.parametrize("over,message", [
    ({"--strategy": "hillclimb"}, "unknown strategy 'hillclimb'"),
    ({"--space": "nope"}, "unknown search space 'nope'"),
    ({"--latency-target-ms": None}, "give a target"),
    ({"--storage": "sqlite:////nonexistent-dir/x/y.db"}, "cannot open storage"),
    ({"--data-dir": "/nonexistent-dir", "--dataset": "fashion-mnist"},
     "no Fashion-MNIST idx files in '/nonexistent-dir'"),
    ({"--supernet": "/nonexistent-dir/sn.pt"}, "supernet file '/nonexistent-dir/sn.pt' does"),
    ({"--strategy-option": "propsal=edit"}, "unexpected keyword argument 'propsal'"),
    ({"--strategy-option": "proposal=mutate"}, "bad rl option proposal='mutate'"),
    ({"--strategy-option": "proposal"}, "expected KEY=VALUE"),
])
def test_bad_input_exits_2_with_one_line_and_no_study(run_cli, tmp_path, table_path, over,
                                                      message):
    out = tmp_path / "run"
    code, _, err = run_cli(*_args(out, table_path, **over))
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (out / "study.db").exists()


def test_strategy_options_reach_the_strategy_and_the_study(run_cli, tmp_path, table_path,
                                                           tiny_supernet):
    import optuna

    out = tmp_path / "run"
    code, _, err = run_cli(*_args(out, table_path, **{"--supernet": str(tiny_supernet),
                                                      "--strategy-option": "proposal=edit"}),
                           "--strategy-option", "edit_lr=0.2")
    assert code == 0, err
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out / 'study.db'}")
    config = study.user_attrs["mobile_nas"]["config"]
    assert config["strategy_options"] == {"proposal": "edit", "edit_lr": 0.2}


@pytest.mark.parametrize("value", ["0", "-3", "nan"])
def test_target_must_be_positive(run_cli, tmp_path, table_path, value):
    code, _, err = run_cli(*_args(tmp_path / "r", table_path, **{"--latency-target-ms": value}))
    assert code == 2 and "expected a positive number" in err


def test_a_supernet_trained_on_this_runs_validation_images_is_refused(run_cli, tmp_path,
                                                                       table_path,
                                                                       tiny_supernet):
    code, _, err = run_cli(*_args(tmp_path / "r", table_path,
                                  **{"--supernet": str(tiny_supernet), "--split-seed": "1"}))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "was trained beside split {'dataset': 'synthetic', 'split_seed': 0" in err
    assert "this run validates on {'dataset': 'synthetic', 'split_seed': 1" in err
    assert not (tmp_path / "r" / "study.db").exists()


@pytest.mark.parametrize("value", ["-0.1", "ten", "10"])
def test_skip_margin_must_be_a_fraction_or_off(run_cli, tmp_path, table_path, value):
    code, _, err = run_cli(*_args(tmp_path / "r", table_path, **{"--skip-margin": value}))
    assert code == 2 and "expected a fraction >= 0" in err
    assert not (tmp_path / "r" / "study.db").exists()


def test_table_lacking_layers_fails_before_the_study(run_cli, tmp_path):
    from mobile_nas.space import get_space

    table = tmp_path / "partial.json"
    table.write_text(json.dumps(synthetic_table_json(get_space("fmnist28"), drop=7)))
    code, _, err = run_cli(*_args(tmp_path / "run", table))
    assert code == 2 and "lacks 7 layers of space 'fmnist28'" in err
    assert not (tmp_path / "run" / "study.db").exists()


def test_resume_with_other_strategy_is_refused(run_cli, tmp_path, table_path, tiny_supernet):
    out = tmp_path / "run"
    sn = {"--supernet": str(tiny_supernet), "--trials": "1"}
    assert run_cli(*_args(out, table_path, **sn))[0] == 0
    before = (out / "trials.csv").read_text()
    code, _, err = run_cli(*_args(out, table_path, **sn, **{"--strategy": "tpe"}), "--resume")
    assert code == 2 and "strategy='rl', now strategy='tpe'" in err
    assert (out / "trials.csv").read_text() == before


def test_proxy_training_evaluator(run_cli, tmp_path, table_path, monkeypatch):
    import mobile_nas.search.presets as presets

    quick, real = presets.get_preset("quick"), presets.get_preset
    small = presets.Preset(
        "quick", quick.supernet, calib_batches=1, calib_batch_size=16, val_images=64,
        val_size=500, proxy_epochs=1, proxy_train_images=64)
    monkeypatch.setattr(presets, "get_preset", lambda n: small if n == "quick" else real(n))
    out = tmp_path / "run"
    code, stdout, err = run_cli(*_args(out, table_path, **{"--strategy": "random",
                                                          "--trials": "2"}),
                                "--evaluator", "proxy", "--json")
    assert code == 0, err
    best = json.loads(stdout)["best"]
    assert 0.0 <= best["accuracy"] <= 1.0 and not (out / "supernet.pt").exists()


def test_strategy_and_preset_choices_come_from_the_registries(monkeypatch):
    from mobile_nas.cli import build_parser
    from mobile_nas.registry import Registry
    from mobile_nas.search import presets
    from mobile_nas.search.sampler import strategy_names

    reg = Registry("preset", presets.StrategyError)
    for name in presets.PRESETS:
        reg.register(name, presets.PRESETS.get(name))
    quick = presets.get_preset("quick")
    reg.register("tiny", presets.Preset("tiny", quick.supernet, calib_batches=1,
                                        calib_batch_size=8, val_images=8))
    monkeypatch.setattr(presets, "PRESETS", reg)
    parser = build_parser()
    search = parser._subparsers._group_actions[0].choices["search"]
    text = search.format_help()
    assert all(name in text for name in [*strategy_names(), "default", "quick", "tiny"])
    args = parser.parse_args(["search", "--space", "fmnist28", "--trials", "1", "--out", "r",
                              "--preset", "tiny"])
    assert args.preset == "tiny"


def test_int8_search_refuses_an_fp32_table_in_one_line(run_cli, tmp_path, table_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli(*_args(out, table_path, **{"--precision": "int8"}))
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1, err
    assert (f"latency table {table_path} was built for precision fp32, not the requested "
            f"precision int8; build one with: mobile-nas lut build --space fmnist28 "
            f"--precision int8 --out ") in err
    assert not (out / "study.db").exists()


def test_int8_search_with_an_int8_table_and_its_resume(run_cli, tmp_path, table_path,
                                                       tiny_supernet):
    from mobile_nas.space import get_space

    data = synthetic_table_json(get_space("fmnist28"))
    data["metadata"]["precision"] = "int8"
    int8 = tmp_path / "fmnist28_int8.json"
    int8.write_text(json.dumps(data))
    out = tmp_path / "run"
    sn = {"--supernet": str(tiny_supernet), "--trials": "2"}
    code, stdout, err = run_cli(*_args(out, int8, **sn, **{"--precision": "int8"}), "--json")
    assert code == 0, err
    assert json.loads(stdout)["trials"] == 2
    best = json.loads((out / "best.json").read_text())
    assert best["precision"] == "int8" and best["latency"] == f"table:{int8}"
    assert best["feasible"] and best["latency_ms"] > 0
    # an int8 study is not continued on fp32 latency
    code, _, err = run_cli(*_args(out, table_path, **{**sn, "--trials": "3"}), "--resume")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "the study was run with precision='int8', now precision='fp32'" in err


def _nb201_csvs(folder):
    """Every NAS-Bench-201 cell with a made-up, deterministic accuracy and latency (ms)."""
    import itertools

    ops = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
    acc_rows, lat_rows = ["arch,value"], ["arch,value"]
    for i, cell in enumerate(itertools.product(range(len(ops)), repeat=6)):
        e = [f"{ops[o]}~{j}" for o, j in zip(cell, (0, 0, 1, 0, 1, 2), strict=True)]
        arch = f"|{e[0]}|+|{e[1]}|{e[2]}|+|{e[3]}|{e[4]}|{e[5]}|"
        acc_rows.append(f"{arch},{0.5 + 0.02 * sum(cell) + 1e-7 * i:.7f}")
        lat_rows.append(f"{arch},{1.0 + 0.5 * sum(o in (2, 3) for o in cell) + 0.1 * cell[3]}")
    acc, lat = folder / "acc.csv", folder / "lat.csv"
    acc.write_text("\n".join(acc_rows) + "\n")
    lat.write_text("\n".join(lat_rows) + "\n")
    return acc, lat


def test_the_command_is_search_from_config_plus_printing(run_cli, tmp_path):
    """issue 28: ``mobile-nas search`` and the library call it makes, on one configuration,
    write the same trials and best.json (times aside)."""
    import csv

    from mobile_nas.search.command import search_from_config
    from mobile_nas.search.runner import SearchConfig

    acc, lat = _nb201_csvs(tmp_path)
    cli_out, lib_out = tmp_path / "cli", tmp_path / "lib"
    code, stdout, err = run_cli(
        "search", "--space", "nb201", "--evaluator", "table", "--accuracy-csv", str(acc),
        "--latency-csv", str(lat), "--latency-target-ms", "2.6", "--trials", "12",
        "--out", str(cli_out), "--no-progress", "--json")
    assert code == 0, err
    result = search_from_config(
        SearchConfig(space="nb201", strategy="rl", trials=12, out_dir=str(lib_out),
                     latency_target_ms=2.6, evaluator="table", threads=1, progress=False),
        accuracy_csv=str(acc), latency_csv=str(lat))
    assert result is not None and result.trials == 12
    assert json.loads(stdout)["best"]["arch"] == result.best["arch"]
    assert result.best["feasible"] and result.best["latency_ms"] <= 2.6

    def rows(run):
        with open(run / "trials.csv", newline="") as f:
            return [{k: v for k, v in row.items() if k != "duration_s"}
                    for row in csv.DictReader(f)]

    assert rows(cli_out) == rows(lib_out) and len(rows(lib_out)) >= 12
    assert json.loads((cli_out / "best.json").read_text()) == \
        json.loads((lib_out / "best.json").read_text()) == result.best
    assert (cli_out / "pareto.png").exists()  # the command draws it; the library call does not
