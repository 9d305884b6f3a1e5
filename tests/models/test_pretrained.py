"""The shipped pretrained fmnist28 supernet and the safetensors supernet format."""

import pytest
import torch

from mobile_nas.models.supernet import MobileSupernet
from mobile_nas.pretrained import pretrained_supernet_path, read_metadata
from mobile_nas.search.runner import SearchConfig, _shipped_supernet
from mobile_nas.space import get_space
from mobile_nas.train.supernet import (
    SupernetError,
    SupernetTrainConfig,
    load_supernet,
    save_supernet_safetensors,
)

SPACE = get_space("fmnist28")


def test_safetensors_round_trip_and_refusals(tmp_path):
    torch.manual_seed(0)
    net = MobileSupernet(SPACE).eval()
    path = tmp_path / "s.safetensors"
    save_supernet_safetensors(path, net, config=SupernetTrainConfig(steps=3), steps_done=3,
                              metadata={"dataset": "fashion-mnist", "split_seed": 0})
    meta = read_metadata(path)
    assert meta["space"] == "fmnist28" and meta["config"]["steps"] == 3
    assert meta["split_seed"] == 0  # JSON values come back typed
    loaded = load_supernet(path, SPACE)
    arch = SPACE.sample(1)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        # float16 storage: logits agree to float16 precision, not bit for bit
        torch.testing.assert_close(loaded(x, arch), net(x, arch), rtol=2e-2, atol=2e-3)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with pytest.raises(SupernetError, match="not 'mobile224'"):
        load_supernet(path, get_space("mobile224"))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SupernetError, match="corrupt"):
        load_supernet(path, SPACE)


def test_shipped_supernet_loads_and_scores_a_sampled_architecture():
    from mobile_nas.search.supernet_evaluator import SupernetEvaluator
    from mobile_nas.train.data import load_dataset

    path = pretrained_supernet_path("fmnist28")
    assert path is not None, "mobile_nas/pretrained/fmnist28_supernet.safetensors is missing"
    assert path.stat().st_size < 4 * 2**20  # a few MB at most
    meta = read_metadata(path)
    assert meta["dataset"] == "fashion-mnist" and meta["split_seed"] == 0
    assert "retrain_command" in meta and meta["fidelity"]["n"] >= 20  # measured, recorded
    supernet = load_supernet(path, SPACE)
    evaluator = SupernetEvaluator(supernet=supernet, dataset=load_dataset("fashion-mnist"),
                                  calib_batches=2, calib_batch_size=64, val_images=500)
    # trained weights: far above the 10% of chance on a random path of the space
    assert evaluator.evaluate(SPACE.sample(7)) > 0.6


def test_search_takes_the_shipped_supernet_only_on_its_split(tmp_path):
    def config(**kw):
        return SearchConfig(space="fmnist28", strategy="random", trials=1,
                            out_dir=str(tmp_path), progress=False, **kw)

    supernet, why = _shipped_supernet(config(), SPACE, 5000)
    assert supernet is not None and "shipped fmnist28_supernet" in why
    supernet, why = _shipped_supernet(config(split_seed=1), SPACE, 5000)  # other split
    assert supernet is None and "split_seed 0 (this run: 1)" in why
    assert _shipped_supernet(config(seed=1), SPACE, 5000)[0] is not None  # other draws only
    assert _shipped_supernet(config(dataset="synthetic"), SPACE, 5000)[0] is None
    assert _shipped_supernet(config(), SPACE, 2000)[0] is None  # other validation size
