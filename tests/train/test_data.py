import gzip

import numpy as np
import pytest
import torch

from mobile_nas.train.data import DEBIAN_FASHION_MNIST, DatasetError, batches, load_dataset

HAVE_FMNIST = DEBIAN_FASHION_MNIST.is_dir()


@pytest.mark.skipif(not HAVE_FMNIST, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian_package_with_seeded_validation_split():
    d = load_dataset("fashion-mnist", val_size=5000, seed=1)
    assert (len(d.train), len(d.val), len(d.test)) == (55000, 5000, 10000)
    assert d.input_shape == (1, 28, 28) and d.classes[0] == "T-shirt/top"
    assert d.train.images.dtype == torch.uint8
    # class balance of the published test split: 1000 images per class
    assert torch.bincount(d.test.labels).tolist() == [1000] * 10
    again = load_dataset("fashion-mnist", val_size=5000, seed=1)
    assert torch.equal(d.val.labels, again.val.labels)


def _write_idx(folder, name, array):
    dims = array.shape
    magic = (0x08 << 8) | len(dims)
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in dims)
    with gzip.open(folder / f"{name}.gz", "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_data_dir_with_idx_files_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for split, n in (("train", 300), ("t10k", 100)):
        _write_idx(tmp_path, f"{split}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(tmp_path, f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n))
    d = load_dataset("fashion-mnist", data_dir=tmp_path, val_size=50)
    assert (len(d.train), len(d.val), len(d.test)) == (250, 50, 100)
    assert not any(p.name.startswith(".") for p in (tmp_path / "cache").rglob("*"))


def test_missing_dataset_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILE_NAS_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match="no Fashion-MNIST idx files"):
        load_dataset("fashion-mnist", data_dir=tmp_path / "empty")
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("imagenet-22k")


def test_batches_normalize_and_augment():
    d = load_dataset("synthetic")
    xs = [x for x, _ in batches(d.train, 500, mean=d.mean, std=d.std)]
    x = torch.cat(xs)
    assert x.shape == (len(d.train), 1, 28, 28)
    assert abs(x.mean().item()) < 0.05 and abs(x.std().item() - 1) < 0.05
    aug = next(batches(d.train, 64, mean=d.mean, std=d.std, augment=True,
                       rng=np.random.default_rng(1)))[0]
    assert aug.shape == (64, 1, 28, 28)
