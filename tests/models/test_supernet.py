"""The weight-sharing supernet: paths, weight slicing, BN recalibration, files."""

import pytest
import torch

from mobile_nas.models.supernet import MobileSupernet, SlicedBatchNorm, recalibrate_batchnorm
from mobile_nas.space import get_space
from mobile_nas.train.supernet import (
    SupernetError,
    SupernetTrainConfig,
    load_supernet,
    save_supernet,
)

ARCH = "mb3_k3_n1_c16_relu|mb6_k5_n2_c24_hswish_se|ds_k3_n1_c40_relu|mb3_k7_n1_c64_hswish"


@pytest.fixture(scope="module")
def space():
    return get_space("fmnist28")


@pytest.fixture
def net(space):
    torch.manual_seed(0)
    return MobileSupernet(space).eval()


def test_every_path_runs(space, net):
    x = torch.randn(3, 1, 28, 28)
    for seed in range(4):
        assert net(x, space.sample(seed)).shape == (3, 10)
    assert net(x, net.largest_arch()).shape == (3, 10)
    with pytest.raises(Exception, match="no architecture"):
        net(x)


def test_extract_gives_the_standalone_network_of_the_path(space, net):
    """In eval mode ``extract(arch)`` (a ``build_model`` network) computes the path's logits,
    with every batch norm's statistics and affine parameters made non-trivial first."""
    from mobile_nas.models.build import MobileNet

    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, SlicedBatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    x = torch.randn(4, 1, 28, 28)
    archs = [space.decode(ARCH), space.largest_arch(), space.smallest_arch(),
             *(space.sample(seed) for seed in range(6))]
    for arch in archs:
        model = net.extract(arch)
        assert isinstance(model, MobileNet) and not model.training
        assert torch.allclose(net(x, arch), model(x), atol=1e-5), arch.to_string()
    with pytest.raises(Exception, match="space"):
        net.extract(get_space("nb201").sample(0))


def test_every_registered_supernet_can_extract_a_path():
    from mobile_nas.models.supernet import SUPERNETS, supernet_families

    assert all(callable(getattr(SUPERNETS.get(f), "extract", None))
               for f in supernet_families())


def test_path_ignores_weights_it_does_not_use(space, net):
    arch = space.decode(ARCH)
    x = torch.randn(4, 1, 28, 28)
    before = net(x, arch)
    with torch.no_grad():
        net.stages[0][0]["ds"].dw.weight.normal_()  # stage 0 uses mb, not ds
        net.stages[1][2]["mb"].project.weight.normal_()  # stage 1 has 2 layers, not 3
        net.stages[2][0]["mb"].expand.weight.normal_()  # stage 2 uses ds
        dw = net.stages[0][0]["mb"].dw.weight  # k3 uses the centre of the 7x7 kernel
        dw[:, :, 0, :] = 5.0
        dw[:, :, :, -1] = 5.0
        exp = net.stages[0][0]["mb"].expand.weight  # mb3 uses the first 3*cin channels
        exp[16 * 3:] = 7.0
        net.stages[3][0]["mb"].project.weight[64:] = 3.0  # c64 of at most 96
    assert torch.equal(net(x, arch), before)
    with torch.no_grad():
        net.stages[0][0]["mb"].dw.weight[:, :, 3, 3] += 1.0  # the centre is used
    assert not torch.equal(net(x, arch), before)


def test_recalibration_sets_the_path_statistics(space, net):
    arch = space.decode(ARCH)
    x = torch.randn(16, 1, 28, 28) * 2 + 1
    recalibrate_batchnorm(net, [x], arch=arch)
    assert not net.training
    stem_out = net.stem(x, 16, stride=1)
    assert torch.allclose(net.stem_bn.running_mean[:16], stem_out.mean((0, 2, 3)), atol=1e-5)
    assert all(not m.calibrating for m in net.modules() if isinstance(m, SlicedBatchNorm))
    # two batches: running stats are their plain average, not a momentum blend
    y = torch.randn(16, 1, 28, 28) - 1
    recalibrate_batchnorm(net, [x, y], arch=arch)
    both = (stem_out.mean((0, 2, 3)) + net.stem(y, 16, stride=1).mean((0, 2, 3))) / 2
    assert torch.allclose(net.stem_bn.running_mean[:16], both, atol=1e-5)


def test_file_round_trip_and_refusals(space, net, tmp_path):
    cfg = SupernetTrainConfig(steps=2, batch_size=4)
    path = tmp_path / "sn.pt"
    save_supernet(path, net, config=cfg, steps_done=2)
    loaded = load_supernet(path, space)
    x = torch.randn(2, 1, 28, 28)
    arch = space.decode(ARCH)
    assert torch.equal(loaded(x, arch), net(x, arch))
    with pytest.raises(SupernetError, match="trained for space 'fmnist28', not 'mobile224'"):
        load_supernet(path, get_space("mobile224"))
    save_supernet(path, net, config=cfg, steps_done=1)
    with pytest.raises(SupernetError, match="unfinished"):
        load_supernet(path, space)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SupernetError, match="not a readable supernet file"):
        load_supernet(tmp_path / "bad.pt", space)


def test_bad_training_settings():
    with pytest.raises(SupernetError, match="unknown supernet sampling 'greedy'"):
        SupernetTrainConfig(sampling="greedy")
    with pytest.raises(SupernetError, match="steps=0"):
        SupernetTrainConfig(steps=0)


def test_training_resumes_from_its_checkpoint(space, tmp_path, monkeypatch):
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.supernet import train_supernet

    ds = load_dataset("synthetic", val_size=500)
    cfg = SupernetTrainConfig(steps=4, batch_size=4, warmup_steps=1)
    torch.manual_seed(0)
    full = MobileSupernet(space)
    train_supernet(full, ds, cfg, progress=False)
    path = tmp_path / "sn.pt"
    real_step, calls = torch.optim.SGD.step, []

    def dying_step(self, *a, **kw):  # the process dies during the third step
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_step(self, *a, **kw)

    monkeypatch.setattr(torch.optim.SGD, "step", dying_step)
    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(MobileSupernet(space), ds, cfg, checkpoint_path=path,
                       checkpoint_every=2, progress=False)
    monkeypatch.setattr(torch.optim.SGD, "step", real_step)
    resumed = MobileSupernet(space)
    result = train_supernet(resumed, ds, cfg, checkpoint_path=path, checkpoint_every=2,
                            progress=False)
    assert result.resumed_from_step == 2
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
    again = MobileSupernet(space)  # a finished file is loaded, not retrained
    assert train_supernet(again, ds, cfg, checkpoint_path=path,
                          progress=False).resumed_from_step == 4
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(),
                                                 resumed.state_dict().values(), strict=True))


def test_a_file_from_before_a_setting_existed_is_reused(space, tmp_path):
    """Supernet files written before ``optimizer`` existed lack it: they hold the default
    ("sgd") and are reused, not retrained; a file with another setting is retrained."""
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.supernet import train_supernet

    ds = load_dataset("synthetic", val_size=500)
    cfg = SupernetTrainConfig(steps=2, batch_size=4, warmup_steps=1)
    path = tmp_path / "sn.pt"
    train_supernet(MobileSupernet(space), ds, cfg, checkpoint_path=path, progress=False)
    state = torch.load(path, weights_only=True)
    del state["config"]["optimizer"]
    torch.save(state, path)
    assert train_supernet(MobileSupernet(space), ds, cfg, checkpoint_path=path,
                          progress=False).resumed_from_step == 2
    adamw = SupernetTrainConfig(steps=2, batch_size=4, warmup_steps=1, optimizer="adamw",
                                lr=1e-3)
    assert train_supernet(MobileSupernet(space), ds, adamw, checkpoint_path=path,
                          progress=False).resumed_from_step == 0


def test_sandwich_rule_with_inplace_distillation_trains_every_kind_of_path(space):
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.supernet import train_supernet

    torch.manual_seed(0)
    net = MobileSupernet(space)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = SupernetTrainConfig(steps=2, batch_size=16, warmup_steps=1, sampling="sandwich",
                              random_paths=1, distill=0.5)
    result = train_supernet(net, load_dataset("synthetic"), cfg, progress=False, device="cpu")
    assert torch.isfinite(torch.tensor(result.final_loss))
    after = net.state_dict()
    # the largest path reaches the deepest slot and SE of the last stage: it was trained
    deepest = [k for k in after if k.startswith(f"stages.3.{max(space.stages[3].layers) - 1}.")
               and "weight" in k]
    assert deepest and any(not torch.equal(before[k], after[k]) for k in deepest)
    # ds blocks (the smallest path is all ds) were trained too
    ds = [k for k in after if ".ds." in k and k.endswith("weight")]
    assert any(not torch.equal(before[k], after[k]) for k in ds)
    with pytest.raises(SupernetError, match="bad sandwich settings"):
        SupernetTrainConfig(sampling="sandwich", distill=1.5)
