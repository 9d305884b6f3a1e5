"""Files written by release 9257da6 (tests/fixtures, see make_fixtures.py) still load: a
supernet training file, a model checkpoint and a training state to resume."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from mobile_nas.models import build_model
from mobile_nas.models.supernet import build_supernet
from mobile_nas.space import get_space
from mobile_nas.train.checkpoint import load_checkpoint, save_checkpoint
from mobile_nas.train.data import load_dataset
from mobile_nas.train.supernet import (
    SupernetTrainConfig,
    load_supernet,
    load_supernet_file,
    train_supernet,
)
from mobile_nas.train.trainer import train_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", val_size=500)


def _raw(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_old_supernet_file_loads_and_is_reused(data, tmp_path):
    info = EXPECTED["supernet"]
    space = get_space(info["space"])
    old = FIXTURES / info["file"]
    net = load_supernet(old, space)
    raw = _raw(old)
    assert all(torch.equal(v, raw["state_dict"][k]) for k, v in net.state_dict().items())
    config = SupernetTrainConfig(**load_supernet_file(old, space)["config"])
    shutil.copy(old, tmp_path / "sn.pt")
    result = train_supernet(build_supernet(space), data, config,
                            checkpoint_path=tmp_path / "sn.pt", progress=False, device="cpu")
    assert result.resumed_from_step == info["steps"]  # finished: reused, not retrained
    train_supernet(build_supernet(space), data, config, checkpoint_path=tmp_path / "new.pt",
                   progress=False, device="cpu")
    assert _raw(tmp_path / "new.pt").keys() == raw.keys()  # the layout did not change


def test_old_model_checkpoint_loads_and_is_rewritten_alike(tmp_path):
    info = EXPECTED["model_checkpoint"]
    old = FIXTURES / info["file"]
    ckpt = load_checkpoint(old)
    assert (ckpt.arch, ckpt.space) == (info["arch"], info["space"])
    model = ckpt.build_model()
    assert all(torch.equal(v, _raw(old)["state_dict"][k])
               for k, v in model.state_dict().items())
    save_checkpoint(ckpt, tmp_path / "m.pt")
    assert _raw(tmp_path / "m.pt").keys() == _raw(old).keys()
    assert load_checkpoint(tmp_path / "m.pt").state_dict.keys() == ckpt.state_dict.keys()


def test_old_training_state_resumes_to_the_uninterrupted_weights(data, tmp_path):
    info = EXPECTED["training_state"]
    space = get_space(info["space"])
    arch = space.decode(info["arch"])
    shutil.copy(FIXTURES / info["file"], tmp_path / "m.pt.state")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(1)  # the weights come from the file
        resumed = build_model(arch)
        result = train_model(resumed, data, **info["settings"], progress=False, device="cpu",
                             checkpoint_path=tmp_path / "m.pt.state", resume=True)
        torch.manual_seed(0)
        straight = build_model(arch)
        train_model(straight, data, **info["settings"], progress=False, device="cpu")
    finally:
        torch.set_num_threads(threads)
    assert result.resumed_from_epoch == info["epoch"]
    a, b = resumed.state_dict(), straight.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
