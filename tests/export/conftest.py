import pytest

from mobile_nas.train.data import DEBIAN_FASHION_MNIST

TINY = "ds_k3_n1_c16_relu|mb3_k3_n1_c24_relu|mb3_k3_n1_c40_hswish|mb3_k3_n1_c64_hswish_se"

needs_fmnist = pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                                  reason="Debian's dataset-fashion-mnist is not installed")


@pytest.fixture(scope="session")
def fmnist_ckpt(tmp_path_factory):
    """A small network trained briefly on real Fashion-MNIST images, via the CLI."""
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    import torch

    from mobile_nas.cli import main

    threads = torch.get_num_threads()

    out = tmp_path_factory.mktemp("ckpt") / "model.pt"
    code = main(["train", TINY, "--space", "fmnist28", "--dataset", "fashion-mnist",
                 "--epochs", "2", "--subset", "4000", "--optimizer", "adamw",
                 "--out", str(out), "--no-progress", "--json", "--threads", "1"])
    torch.set_num_threads(threads)
    assert code == 0 and out.is_file()
    return out
