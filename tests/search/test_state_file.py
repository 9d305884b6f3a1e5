"""The strategy state file: safetensors plus JSON metadata, read back exactly; bad files are
one clean StrategyError; files of release 9257da6 (torch.save, ``*.pt``) still load."""

import json
import shutil
from pathlib import Path

import optuna
import pytest
import torch

from mobile_nas.search.sampler import (
    LEGACY_STATE_FILE,
    STATE_FILE,
    STATE_FILE_TYPE,
    StrategySampler,
)
from mobile_nas.search.strategy import StrategyError, make_strategy
from mobile_nas.space import get_space
from mobile_nas.weightfile import pack_tensors, unpack_tensors
from tests.fixtures.make_fixtures import STRATEGY_OPTIONS, TELLS, toy_reward

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = {s["strategy"]: s for s in
            json.loads((FIXTURES / "expected.json").read_text())["strategy_states"]}


def _sampler(name: str, path: Path, *, seed: int = 0, space: str = "fmnist28"
             ) -> StrategySampler:
    return StrategySampler(make_strategy(name, space=get_space(space), seed=seed,
                                         **STRATEGY_OPTIONS[name]), state_path=path)


def _run(sampler: StrategySampler, n: int = TELLS) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: toy_reward(sampler.arch_of(t)), n_trials=n)


def _next(sampler: StrategySampler, n: int = 3) -> list[str]:
    return [sampler.strategy.ask().to_string() for _ in range(n)]


@pytest.mark.parametrize("name", ["rl", "evolution"])
def test_a_state_file_of_release_9257da6_continues_where_it_stopped(name, tmp_path):
    """Read through the old path (torch.load, weights_only=True); the next save writes the
    new file and a restart from that continues identically."""
    expected = EXPECTED[name]
    direct = _sampler(name, FIXTURES / expected["file"], seed=5)
    assert sorted(direct.told) == expected["told"]
    assert _next(direct) == expected["next"]
    # a run folder of that release: RUN/strategy_state.pt beside the new name
    shutil.copy(FIXTURES / expected["file"], tmp_path / LEGACY_STATE_FILE)
    resumed = _sampler(name, tmp_path / STATE_FILE, seed=5)
    assert sorted(resumed.told) == expected["told"]
    resumed.save_state()  # converts: the new file now takes precedence
    assert (tmp_path / STATE_FILE).read_bytes()[:4] != b"PK\x03\x04"
    again = _sampler(name, tmp_path / STATE_FILE, seed=7)
    assert sorted(again.told) == expected["told"]
    assert _next(again) == expected["next"]


@pytest.mark.parametrize("name", ["rl", "evolution", "random"])
def test_round_trip_restores_every_bit(name, tmp_path):
    path = tmp_path / STATE_FILE
    options = STRATEGY_OPTIONS.get(name, {})
    first = StrategySampler(make_strategy(name, space=get_space("fmnist28"), seed=0,
                                          **options), state_path=path)
    _run(first)
    restored = StrategySampler(make_strategy(name, space=get_space("fmnist28"), seed=9,
                                             **options), state_path=path)
    assert restored.told == first.told == frozenset(range(TELLS))
    a, b = pack_tensors(first.strategy.state_dict()), pack_tensors(
        restored.strategy.state_dict())
    assert a[0] == b[0]  # the plain part, exactly
    assert a[1].keys() == b[1].keys()
    assert all(torch.equal(a[1][k], b[1][k]) and a[1][k].dtype == b[1][k].dtype for k in a[1])
    assert _next(first, 5) == _next(restored, 5)


def test_the_file_is_one_safetensors_file_with_json_metadata(tmp_path):
    path = tmp_path / STATE_FILE
    sampler = StrategySampler(make_strategy("rl", space=get_space("fmnist28"), seed=0),
                              state_path=path)
    _run(sampler, 2)
    tensors, meta = STATE_FILE_TYPE.load_safetensors(path)
    assert meta["format"] == "mobile-nas-strategy-state" and meta["schema_version"] == 2
    assert (meta["strategy"], meta["space"], meta["told"]) == ("rl", "fmnist28", [0, 1])
    assert meta["state"]["policy"]["cell.weight_ih"] == {"__tensor__": "policy/cell.weight_ih"}
    assert tensors["policy/cell.weight_ih"].shape == (4 * 64, 64)
    assert tensors["generator"].dtype == torch.uint8
    assert [p.name for p in tmp_path.iterdir()] == [STATE_FILE]  # no temp file left


def test_another_strategy_or_space_is_refused_in_one_line(tmp_path):
    path = tmp_path / STATE_FILE
    _sampler("evolution", path).save_state()
    with pytest.raises(StrategyError, match="belongs to strategy 'evolution'") as info:
        _sampler("rl", path)
    assert "\n" not in str(info.value)
    with pytest.raises(StrategyError, match="on space 'fmnist28', not 'evolution' on 'nb201'"):
        _sampler("evolution", path, space="nb201")
    with pytest.raises(StrategyError, match="belongs to strategy 'rl'"):  # old files too
        _sampler("evolution", FIXTURES / EXPECTED["rl"]["file"])


def test_a_controller_of_another_size_is_refused_in_one_line(tmp_path):
    path = tmp_path / STATE_FILE
    _sampler("rl", path).save_state()
    with pytest.raises(StrategyError, match="different hidden size") as info:
        StrategySampler(make_strategy("rl", space=get_space("fmnist28"), seed=0, hidden=8),
                        state_path=path)
    assert "\n" not in str(info.value)


def _one_line_error(path: Path, name: str = "rl") -> str:
    with pytest.raises(StrategyError) as info:
        _sampler(name, path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_truncated_files_are_refused_in_one_line(tmp_path):
    good = tmp_path / "good.safetensors"
    sampler = _sampler("rl", good)
    _run(sampler, 4)
    data = good.read_bytes()
    bad = tmp_path / "bad.safetensors"
    for cut in [0, 1, 7, 8, 9, 100, len(data) // 2, len(data) - 1]:
        bad.write_bytes(data[:cut])
        assert "not a readable strategy state" in _one_line_error(bad)


def test_other_files_and_versions_are_refused_in_one_line(tmp_path):
    path = tmp_path / "s.safetensors"
    other = STATE_FILE_TYPE.__class__("supernet file", StrategyError, 1,
                                      kind="mobile-nas-supernet")
    other.save_safetensors(path, {}, {"strategy": "rl", "space": "fmnist28"})
    assert "is not a mobile-nas strategy state" in _one_line_error(path)
    newer = STATE_FILE_TYPE.__class__("strategy state", StrategyError, 3,
                                      kind="mobile-nas-strategy-state")
    newer.save_safetensors(path, {}, {"strategy": "rl", "space": "fmnist28"})
    assert "has schema_version 3; this mobile-nas reads 2" in _one_line_error(path)
    STATE_FILE_TYPE.save_safetensors(path, {}, {"strategy": "rl", "space": "fmnist28",
                                                "told": [], "state": {"policy": {
                                                    "x": {"__tensor__": "gone"}}}})
    assert "does not fit strategy 'rl'" in _one_line_error(path)
    torch.save({"schema_version": 1, "strategy": "rl"}, path)  # a torch file, not ours
    assert "belongs to strategy 'rl' on space None" in _one_line_error(path)


def test_pack_tensors_refuses_what_json_cannot_hold():
    packed, tensors = pack_tensors({"a": [torch.zeros(2), (1, "x")], "b": None})
    assert packed == {"a": [{"__tensor__": "a/0"}, [1, "x"]], "b": None}
    assert unpack_tensors(json.loads(json.dumps(packed)), tensors)["a"][0] is tensors["a/0"]
    with pytest.raises(TypeError, match="keys must be strings"):
        pack_tensors({"state": {0: 1.0}})
    with pytest.raises(TypeError, match="set"):
        pack_tensors({"seen": {1, 2}})
