"""Cell supernets (NASNet, NAS-Bench-201): paths equal stand-alone networks, weights are
shared per edge, training/saving/loading and the search runner work on cell spaces."""

import pytest
import torch

from mobile_nas.models.cell_supernet import NasNetSupernet, NB201Supernet
from mobile_nas.models.supernet import build_supernet, recalibrate_batchnorm
from mobile_nas.space import get_space

SPACES = {"nasnet": (1, 28, 28), "nb201@n1-f8-r28-c1": (1, 28, 28),
          "nb201@n1-f4": (3, 32, 32)}


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_path_computes_the_standalone_network(name):
    """After recalibration a path and ``extract(arch)`` (a ``build_model`` network with the
    path's weights) give the same logits, including in the train-mode BN statistics."""
    space = get_space(name)
    torch.manual_seed(0)
    net = build_supernet(space)
    shape = SPACES[name]
    calib = [torch.randn(8, *shape) * 1.5 + 0.3]
    x = torch.randn(5, *shape)
    for seed in range(4):
        arch = space.sample(seed)
        net.train()
        net(torch.randn(8, *shape), arch)  # disturb the running statistics
        recalibrate_batchnorm(net, calib, arch=arch)
        model = net.extract(arch)
        assert type(model).__name__ in ("NasNet", "NB201Network")
        assert torch.allclose(net(x, arch), model(x), atol=1e-5)


def test_nasnet_path_uses_only_its_edges():
    space = get_space("nasnet")
    torch.manual_seed(0)
    net = NasNetSupernet(space).eval()
    arch = space.decode("normal:sep_conv_3x3~1+identity~0,sep_conv_5x5~2+avg_pool_3x3~0,"
                        "max_pool_3x3~1+dil_conv_3x3~3,conv_1x7_7x1~4+identity~1,"
                        "sep_conv_7x7~0+sep_conv_3x3~2|reduce:sep_conv_3x3~0+max_pool_3x3~1,"
                        "sep_conv_5x5~2+identity~1,avg_pool_3x3~0+sep_conv_3x3~3,"
                        "dil_conv_3x3~4+sep_conv_7x7~2,identity~3+conv_1x7_7x1~0")
    x = torch.randn(2, 1, 28, 28)
    before = net(x, arch)
    with torch.no_grad():
        for cell in net.cells:  # no block 0 applies sep_conv_7x7, block 1 max_pool (no weights)
            for p in [*cell.edges["b0_sep_conv_7x7"].parameters(),
                      *cell.edges["b1_sep_conv_3x3"].parameters()]:
                p.normal_()
        net.cells[1].edges["b0_sep_conv_3x3"][1].weight.normal_()  # reduce: stride 2 is used
    assert torch.equal(net(x, arch), before)
    with torch.no_grad():
        net.cells[1].edges["b0_sep_conv_3x3_s2"][1].weight.mul_(3.0)
    assert not torch.allclose(net(x, arch), before)


def test_nb201_edges_are_shared_by_architectures_not_by_cells():
    space = get_space("nb201@n2-f4")
    net = NB201Supernet(space)
    cells = [m for m in net.cells if type(m).__name__ == "_NB201SuperCell"]
    assert len(cells) == 6  # 3 stages x 2 cells, each with its own weights
    a = space.decode("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|"
                     "nor_conv_1x1~2|")
    b = space.decode("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|"
                     "none~1|nor_conv_3x3~2|")
    wa, wb = net.extract(a).state_dict(), net.extract(b).state_dict()
    # node 1's conv (the first op of every cell) is the same supernet weight in both
    shared = [k for k in wa if k.startswith("cells.0.ops.0.") and "weight" in k]
    assert shared and all(torch.equal(wa[k], wb[k]) for k in shared)


def test_unknown_family_is_refused():
    from mobile_nas.errors import ArchError

    class Fake:
        name, family = "fake", "fake"

    with pytest.raises(ArchError, match="no weight-sharing supernet.*nasnet.*nb201"):
        build_supernet(Fake())


def test_training_saving_and_loading_a_cell_supernet(tmp_path):
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.supernet import (
        SupernetError,
        SupernetTrainConfig,
        load_supernet,
        train_supernet,
    )

    space = get_space("nasnet")
    data = load_dataset("synthetic", val_size=500)
    path = tmp_path / "sn.pt"
    net = build_supernet(space)
    first = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = SupernetTrainConfig(steps=3, batch_size=8, warmup_steps=1)
    result = train_supernet(net, data, cfg, checkpoint_path=path, progress=False)
    assert result.steps == 3
    changed = [k for k, v in net.state_dict().items() if not torch.equal(v, first[k])]
    assert changed  # some sampled edges moved
    loaded = load_supernet(path, space)
    assert isinstance(loaded, NasNetSupernet)
    x, arch = torch.randn(2, 1, 28, 28), space.sample(7)
    assert torch.equal(loaded(x, arch), net.eval()(x, arch))
    with pytest.raises(SupernetError, match="sandwich"):
        train_supernet(build_supernet(space), data,
                       SupernetTrainConfig(steps=1, batch_size=8, sampling="sandwich"),
                       progress=False)


def test_search_with_the_supernet_evaluator_on_a_cell_space(tmp_path, monkeypatch):
    from dataclasses import replace

    import mobile_nas.search.presets as presets
    from mobile_nas.search.costs import macs_params
    from mobile_nas.search.runner import SearchConfig, run_search

    quick, real = presets.get_preset("quick"), presets.get_preset
    assert quick.supernet_config("nasnet").optimizer == "adamw"  # cells: AdamW, more steps
    assert quick.supernet_config("nasnet").steps > quick.supernet_config("mobile").steps
    assert quick.supernet_config("mobile") == quick.supernet
    small = replace(quick, supernet=replace(quick.supernet, batch_size=8), val_images=64,
                    calib_batch_size=16, family_overrides={"nasnet": {**presets.CELL_SUPERNET,
                                                                      "steps": 4}})
    monkeypatch.setattr(presets, "get_preset", lambda n: small if n == "quick" else real(n))
    config = SearchConfig(space="nasnet", strategy="evolution", trials=4,
                          out_dir=str(tmp_path / "run"), dataset="synthetic", preset="quick",
                          macs_target=20e6, progress=False)
    result = run_search(config, latency_fn=lambda a: macs_params(a)[0] / 1e7)
    assert result.trials == 4
    saved = torch.load(tmp_path / "run" / "supernet.pt", weights_only=True)
    assert saved["config"]["optimizer"] == "adamw" and saved["steps_done"] == 4
    assert 0.0 <= result.best["accuracy"] <= 1.0
    assert get_space("nasnet").decode(result.best["arch"]).space == "nasnet"
