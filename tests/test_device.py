"""Device selection and mixed precision: CPU-only machines exercise every path but CUDA's."""

import math

import pytest
import torch

from mobile_nas.device import DeviceError, choose_precision, resolve_device
from mobile_nas.models.build import build_model
from mobile_nas.models.supernet import MobileSupernet
from mobile_nas.space import get_space
from mobile_nas.train.data import load_dataset
from mobile_nas.train.supernet import SupernetTrainConfig, train_supernet
from mobile_nas.train.trainer import evaluate_accuracy, train_model

TINY = "ds_k3_n1_c16_relu|ds_k3_n1_c24_relu|ds_k3_n1_c40_relu|ds_k3_n1_c64_hswish_se"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", val_size=300)


def _model():
    torch.manual_seed(0)
    return build_model(get_space("fmnist28").decode(TINY))


def test_auto_picks_cuda_else_cpu():
    device = resolve_device("auto")
    assert device.type == ("cuda" if torch.cuda.is_available() else
                           "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("CPU") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:1", "cuda:-1", ""])
def test_malformed_device_strings_are_refused(spec):
    if spec == "":
        assert resolve_device(spec) == resolve_device("auto")  # empty means auto
        return
    with pytest.raises(DeviceError, match="is not one of auto, cpu, cuda, cuda:N, mps"):
        resolve_device(spec)


def test_absent_devices_are_refused_naming_what_is_here():
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(DeviceError, match=f"cuda:{n}"):
        resolve_device(f"cuda:{n}")  # one past the last GPU (cuda:0 where there is none)
    if n == 0:
        with pytest.raises(DeviceError, match="CUDA is not available here .*cpu"):
            resolve_device("cuda")


def test_cli_refuses_an_absent_device_with_exit_2(run_cli, tmp_path):
    code, _, err = run_cli("train", TINY, "--space", "fmnist28", "--dataset", "synthetic",
                           "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--device", "gpu")
    assert code == 2 and "device 'gpu' is not one of" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.pt").exists()


def test_precision_defaults():
    assert choose_precision(torch.device("cpu")).dtype is None  # off on CPU unless asked
    assert choose_precision(torch.device("cpu"), True).dtype == torch.bfloat16
    assert choose_precision(torch.device("cpu"), True).scale_gradients is False


def test_bf16_autocast_on_cpu_trains_close_to_fp32(data):
    kw = dict(epochs=2, batch_size=64, train_subset=640, progress=False, device="cpu")
    fp32, bf16 = _model(), _model()
    r32 = train_model(fp32, data, **kw)
    r16 = train_model(bf16, data, amp=True, **kw)
    assert r16.precision == "bfloat16" and r32.precision == "fp32"
    assert all(math.isfinite(h.train_loss) for h in r16.history)
    assert abs(r16.history[-1].train_loss - r32.history[-1].train_loss) < 0.15
    assert abs(r16.val_accuracy - r32.val_accuracy) < 0.1


def test_a_device_string_that_maps_to_the_cpu_gives_identical_training(data):
    if resolve_device("auto").type != "cpu":
        pytest.skip("auto is not the CPU on this machine")
    kw = dict(epochs=1, batch_size=64, train_subset=256, progress=False)
    a, b = _model(), _model()
    train_model(a, data, device="cpu", **kw)
    result = train_model(b, data, device="auto", **kw)
    assert result.device.startswith("cpu")
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    space = get_space("fmnist28")
    cfg = SupernetTrainConfig(steps=3, batch_size=16, warmup_steps=1)
    nets = []
    for device in ("cpu", "auto"):
        torch.manual_seed(0)
        net = MobileSupernet(space)
        train_supernet(net, data, cfg, progress=False, device=device)
        nets.append(net.state_dict())
    assert all(torch.equal(nets[0][k], nets[1][k]) for k in nets[0])


@needs_cuda
@pytest.mark.gpu
def test_cuda_training_saves_weights_a_cpu_machine_scores_the_same(data, tmp_path):
    from mobile_nas.train.checkpoint import load_checkpoint
    from mobile_nas.train.trainer import train_architecture

    arch = get_space("fmnist28").decode(TINY)
    ckpt = train_architecture(arch, data, out=tmp_path / "m.pt", epochs=1, progress=False,
                              train_subset=512, device="cuda", amp=True)
    assert ckpt.metrics["device"].startswith("cuda")
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert all(v.device.type == "cpu" for v in loaded.state_dict.values())
    model = build_model(arch)
    model.load_state_dict(loaded.state_dict)
    cpu_acc = evaluate_accuracy(model.eval(), data.test, data.mean, data.std)
    gpu_acc = evaluate_accuracy(model.to("cuda").eval(), data.test, data.mean, data.std)
    assert abs(cpu_acc - gpu_acc) <= 0.002
    assert abs(cpu_acc - ckpt.metrics["test_accuracy"]) <= 0.002


def test_a_checkpoint_trained_on_cpu_scores_the_same_on_another_device_string(data, tmp_path):
    from mobile_nas.train.checkpoint import load_checkpoint
    from mobile_nas.train.trainer import train_architecture

    arch = get_space("fmnist28").decode(TINY)
    ckpt = train_architecture(arch, data, out=tmp_path / "m.pt", epochs=1, progress=False,
                              train_subset=256, device="cpu")
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert all(v.device.type == "cpu" for v in loaded.state_dict.values())
    model = build_model(arch)
    model.load_state_dict(loaded.state_dict)
    model.to(resolve_device("auto")).eval()
    assert evaluate_accuracy(model, data.test, data.mean, data.std) == pytest.approx(
        ckpt.metrics["test_accuracy"], abs=0.002)
