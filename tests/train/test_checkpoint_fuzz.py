"""Arbitrary bytes given as a checkpoint, supernet, training-state or strategy-state file:
always the tool's own error, in one line.

torch's weights-only unpickler fails on random bytes with IndexError, KeyError, TypeError,
... besides UnpicklingError (seen in CI: ``export`` on 512 random bytes crashed with an
IndexError traceback); safetensors raises its own error type."""

import numpy as np
import optuna
import pytest

from mobile_nas.search.sampler import StrategySampler
from mobile_nas.search.strategy import StrategyError, make_strategy
from mobile_nas.space import get_space
from mobile_nas.train.checkpoint import CheckpointError, load_checkpoint
from mobile_nas.train.supernet import SupernetError, load_supernet_file
from mobile_nas.train.trainer import TRAINING_STATE_FILE, TrainError


def _garbage(rng: np.random.Generator) -> bytes:
    body = rng.integers(0, 256, int(rng.integers(1, 600)), dtype=np.uint8).tobytes()
    # a quarter look like pickles (protocol header), where the unpickler gets further, a
    # quarter like zip archives (what torch.save writes), a quarter like a safetensors header
    kind = rng.integers(0, 4)
    head = [b"", b"\x80\x02", b"PK\x03\x04",
            int(rng.integers(2, 600)).to_bytes(8, "little") + b'{"'][kind]
    return head + body


def _one_line(info: pytest.ExceptionInfo, name: str) -> None:
    assert name in str(info.value) and "\n" not in str(info.value)


def test_random_bytes_never_escape_as_a_traceback(tmp_path):
    rng = np.random.default_rng(2026)
    space = get_space("fmnist28")
    strategy = make_strategy("evolution", space=space, seed=0)
    for _ in range(400):
        data = _garbage(rng)
        for name in ("m.pt", "m.safetensors"):
            (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / "m.pt")
        _one_line(info, "m.pt")
        for name in ("m.pt", "m.safetensors"):
            with pytest.raises(SupernetError) as info:
                load_supernet_file(tmp_path / name, space)
            _one_line(info, name)
        with pytest.raises(TrainError) as info:
            TRAINING_STATE_FILE.load(tmp_path / "m.pt")
        _one_line(info, "m.pt")
        with pytest.raises(StrategyError) as info:
            StrategySampler(strategy, state_path=tmp_path / "m.safetensors")
        _one_line(info, "m.safetensors")


def test_damaged_strategy_states_load_or_fail_in_one_line(tmp_path):
    """Truncated files, and flipped bytes in the header (tensor layout and JSON metadata):
    either the state still loads (a changed number) or one StrategyError."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = get_space("fmnist28")
    good = tmp_path / "good.safetensors"
    sampler = StrategySampler(make_strategy("rl", space=space, seed=0, hidden=8,
                                            batch_size=2), state_path=good)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: float(sum(sampler.arch_of(t).indices())), n_trials=5)
    data = good.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(7)
    bad = tmp_path / "bad.safetensors"
    refused = 0
    for case in range(400):
        if case % 2:
            damaged = data[:int(rng.integers(0, len(data)))]
        else:
            damaged = bytearray(data)
            for pos in rng.integers(0, header_end, int(rng.integers(1, 4))):
                damaged[pos] = int(rng.integers(0, 256))
        bad.write_bytes(bytes(damaged))
        try:
            StrategySampler(make_strategy("rl", space=space, seed=0, hidden=8, batch_size=2),
                            state_path=bad)
        except StrategyError as exc:
            assert "bad.safetensors" in str(exc) and "\n" not in str(exc)
            refused += 1
    assert refused >= 250  # every truncation, and most header damage
