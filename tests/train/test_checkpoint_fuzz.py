"""Arbitrary bytes given as a checkpoint or supernet file: always the tool's own error.

torch's weights-only unpickler fails on random bytes with IndexError, KeyError, TypeError,
... besides UnpicklingError (seen in CI: ``export`` on 512 random bytes crashed with an
IndexError traceback)."""

import numpy as np
import pytest

from mobile_nas.space import get_space
from mobile_nas.train.checkpoint import CheckpointError, load_checkpoint
from mobile_nas.train.supernet import SupernetError, load_supernet_file


def _garbage(rng: np.random.Generator) -> bytes:
    body = rng.integers(0, 256, int(rng.integers(1, 600)), dtype=np.uint8).tobytes()
    # half of them look like pickles (protocol header), where the unpickler gets further
    return (b"\x80\x02" + body) if rng.random() < 0.5 else body


def test_random_bytes_never_escape_as_a_traceback(tmp_path):
    rng = np.random.default_rng(2026)
    path = tmp_path / "m.pt"
    space = get_space("fmnist28")
    for _ in range(400):
        path.write_bytes(_garbage(rng))
        with pytest.raises(CheckpointError, match="m.pt"):
            load_checkpoint(path)
        with pytest.raises(SupernetError, match="m.pt"):
            load_supernet_file(path, space)
