"""``search --profile-missing``: a candidate's missing layers are timed (on a fake timer) and
cached in the table, so the next search times nothing; incomplete tables of another device
are refused in one line (exit 2)."""

import json

import pytest

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, ensure_usable, profiler
from mobile_nas.cost.latency.settings import ProfileSettings
from mobile_nas.search.runner import SearchConfig, run_search
from mobile_nas.space import get_space
from tests.cost.latency.fakes import FakeMachine, local_table
from tests.search.conftest import WidthEvaluator

SETTINGS = ProfileSettings(rounds=2, runs_per_round=2, warmup=1)


@pytest.fixture
def machines(monkeypatch):
    """Every on-demand profiling of the test runs on a new fake machine, listed here."""
    made: list[FakeMachine] = []

    def backend():
        made.append(FakeMachine(SETTINGS))
        return made[-1].backend()

    monkeypatch.setattr(profiler, "onnxruntime_backend", backend)
    return made


def _timed(machines) -> int:
    """Layer sessions opened (keys timed) so far."""
    return sum(len(m.opened) for m in machines)


def _partial(space, path, *seeds, **metadata):
    keys = sorted({k for s in seeds for k in space.runtime_layers(space.sample(s))})
    local_table(space, keys, SETTINGS, **metadata).save(path)
    return path


def _config(out, table) -> SearchConfig:
    return SearchConfig(space="fmnist28", strategy="random", trials=4, out_dir=str(out),
                        latency_target_ms=1000.0, table=str(table), storage="memory", seed=0,
                        skip_margin=None, progress=False,
                        verify_top=0)  # finalists timed against a reference: test_finalists


def test_missing_layers_are_timed_once_and_the_next_search_reuses_them(tmp_path, machines,
                                                                       fmnist28):
    table_path = _partial(fmnist28, tmp_path / "t.json", 0, 1)
    before = len(LatencyTable.load(table_path))
    first = run_search(_config(tmp_path / "a", table_path),
                       evaluator=WidthEvaluator(space=fmnist28))
    timed = _timed(machines)
    table = LatencyTable.load(table_path)
    added = table.metadata["on_demand"]["entries"]
    assert timed > 0 and added > 0 and len(table) == before + added
    # the cached table still loads and predicts what the search recorded
    ensure_usable(table, path=table_path)
    best = first.best
    assert LatencyPredictor(table).predict_ms(fmnist28.decode(best["arch"])) == \
        pytest.approx(best["latency_ms"])
    # the same candidates again: nothing left to time
    second = run_search(_config(tmp_path / "b", table_path),
                        evaluator=WidthEvaluator(space=fmnist28))
    assert _timed(machines) == timed
    assert second.best["arch"] == best["arch"]
    assert second.best["latency_ms"] == pytest.approx(best["latency_ms"])
    assert LatencyTable.load(table_path).metadata["on_demand"] == table.metadata["on_demand"]


def _argv(out, table, *extra):
    return ["search", "--space", "fmnist28", "--evaluator", "synflow", "--strategy",
            "random", "--latency-target-ms", "1000", "--trials", "1", "--table", str(table),
            "--out", str(out), "--no-progress", *extra]


def test_a_table_of_another_device_is_refused_in_one_line(run_cli, tmp_path, machines,
                                                          fmnist28):
    table = _partial(fmnist28, tmp_path / "phone.json", 0, device="pixel-7",
                     cpu="Qualcomm Technologies, Inc SM8450")
    code, _, err = run_cli(*_argv(tmp_path / "run", table, "--profile-missing"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "was timed on another machine (device 'pixel-7'" in err
    assert "'mobile-nas lut bundle --space fmnist28 --arch ARCH" in err
    assert not (tmp_path / "run" / "study.db").exists() and _timed(machines) == 0
    # by default too, with the up-front refusal saying why profiling cannot help
    code, _, err = run_cli(*_argv(tmp_path / "run", table))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "lacks" in err and "--profile-missing cannot fill it" in err
    assert "another machine" in err and _timed(machines) == 0


def test_the_up_front_refusal_names_the_option(run_cli, tmp_path, machines, fmnist28):
    table = _partial(fmnist28, tmp_path / "t.json", 0)
    n = len(LatencyTable.load(table).missing(fmnist28.enumerate_layers()))
    code, _, err = run_cli(*_argv(tmp_path / "run", table, "--no-profile-missing"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"lacks {n} layers of space 'fmnist28'" in err and "--profile-missing" in err
    assert not (tmp_path / "run" / "study.db").exists() and _timed(machines) == 0


def test_a_mobile224_search_runs_end_to_end_on_a_partial_table(run_cli, tmp_path, machines):
    space = get_space("mobile224")
    table = _partial(space, tmp_path / "m224.json", 0)
    before = len(LatencyTable.load(table))
    code, out, err = run_cli("search", "--space", "mobile224", "--evaluator", "synflow",
                             "--strategy", "random", "--latency-target-ms", "1000",
                             "--trials", "2", "--table", str(table), "--out",
                             str(tmp_path / "run"), "--no-progress", "--json",
                             "--verify-top", "0")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["trials"] == 2 and doc["evaluator"]["name"] == "zero-cost:synflow"
    assert _timed(machines) > 0 and len(LatencyTable.load(table)) > before
    code, out, err = run_cli("lut", "info", "--table", str(table))
    assert code == 0, err
    assert "entries added on demand by" in out and "(this machine)" in out
