"""Datasets as in-memory uint8 tensors, with seeded train/validation splits and fast batching.

Small vision datasets (Fashion-MNIST, CIFAR-10) fit in memory; batching tensors directly is
several times faster on a 2-core CPU than a per-image ``DataLoader`` pipeline. Folder datasets
(``folder:PATH``) of any size stream from disk instead (:mod:`mobile_nas.train.folder`). Images are
loaded through torchvision's dataset classes. Fashion-MNIST is looked for in ``--data-dir``,
then ``$MOBILE_NAS_DATA``, then ``/usr/share/datasets/fashion-mnist`` (Debian's
``dataset-fashion-mnist``), then downloaded where the network allows.

The search only ever sees ``train`` and ``val`` (held out from the training images with a
seed; by default 10% of them, at most 5,000: :func:`resolve_val_size`); ``test`` is for
final reports.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mobile_nas.errors import SettingError
from mobile_nas.train.errors import DatasetError
from mobile_nas.train.folder import FolderImageSet, folder_stats, read_folder
from mobile_nas.train.imageset import ImageSet

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_FMNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
DATASETS = ("fashion-mnist", "cifar10", "synthetic")
#: the default validation split: this fraction of the training images, at most VAL_CAP
VAL_FRACTION = 0.1
VAL_CAP = 5000


@dataclass(frozen=True)
class Dataset:
    """Train/validation/test splits and what a model needs to consume them."""

    name: str
    train: ImageSet | FolderImageSet
    val: ImageSet | FolderImageSet
    test: ImageSet | FolderImageSet
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    split_seed: int = 0  # seed of the permutation that held ``val`` out of the training images

    @property
    def split(self) -> dict[str, object]:
        """Which images are validation: recorded beside anything trained on ``train``."""
        return {"dataset": self.name, "split_seed": self.split_seed, "val_size": len(self.val)}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    @property
    def streamed(self) -> bool:
        """True for a folder dataset read from disk batch by batch."""
        return not isinstance(self.train, ImageSet)


def resolve_val_size(val_size: int | float | None, train_images: int) -> int:
    """Validation images for ``val_size``: a count N, a fraction F of the training images
    (0 < F < 1), or None: ``VAL_FRACTION`` of them, at most ``VAL_CAP`` (5,000 of
    Fashion-MNIST's 60,000, 60 of a 600-image folder). Raises :class:`DatasetError`."""
    if val_size is None:
        n = min(VAL_CAP, max(1, round(VAL_FRACTION * train_images)))
    elif isinstance(val_size, float) and not float(val_size).is_integer():
        if not 0.0 < val_size < 1.0:
            raise DatasetError(f"validation fraction {val_size:g} must be in (0, 1)")
        n = max(1, round(val_size * train_images))
    else:
        n = int(val_size)
    if not 0 < n < train_images:
        raise SettingError("val_size", "validation size {n} must be in 1..{most} (the "
                           "dataset has {images} training images; {what} takes a count or a "
                           "fraction such as 0.1)", value=val_size, n=n,
                           most=train_images - 1, images=train_images)
    return n


def load_dataset(name: str, *, data_dir: str | os.PathLike | None = None,
                 val_size: int | float | None = None, seed: int = 0, download: bool = True,
                 image_shape: tuple[int, int, int] | None = None) -> Dataset:
    """Loads ``name`` (``fashion-mnist``, ``cifar10``, ``synthetic`` or an ImageFolder path
    given as ``folder:PATH``) and holds ``val_size`` training images out for validation
    (:func:`resolve_val_size`: a count, a fraction, or None for the default).

    A folder dataset streams from disk, its images decoded to ``image_shape`` (C, H, W; the
    space's input; default 3x32x32)."""
    if name.startswith("folder:"):
        return _folder_dataset(name, val_size, seed, image_shape)
    if name == "fashion-mnist":
        train, test, classes = _fashion_mnist(data_dir, download)
    elif name == "cifar10":
        train, test, classes = _cifar10(data_dir, download)
    elif name == "synthetic":
        train, test, classes = _synthetic(seed)
    else:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}, "
                           f"folder:PATH (an ImageFolder with train/ and test/)")
    val_size = resolve_val_size(val_size, len(train))
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(train)))
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    floats = train.images[train_idx[:10000]].float() / 255.0
    mean = tuple(floats.mean(dim=(0, 2, 3)).tolist())
    std = tuple(floats.std(dim=(0, 2, 3)).tolist())
    return Dataset(name, ImageSet(train.images[train_idx], train.labels[train_idx]),
                   ImageSet(train.images[val_idx], train.labels[val_idx]), test,
                   tuple(classes), mean, std, split_seed=seed)


def _folder_dataset(name: str, val_size: int | float | None, seed: int,
                    image_shape: tuple[int, int, int] | None) -> Dataset:
    """A folder dataset split as the in-memory ones are (the same seeded permutation)."""
    train, test, classes = read_folder(Path(name[len("folder:"):]), image_shape)
    val_size = resolve_val_size(val_size, len(train))
    perm = np.random.default_rng(seed).permutation(len(train))
    train, val = train.select(perm[val_size:]), train.select(perm[:val_size])
    mean, std = folder_stats(train, seed)
    return Dataset(name, train, val, test, tuple(classes), mean, std, split_seed=seed)


def batches(data: ImageSet | FolderImageSet, batch_size: int, *, mean: tuple[float, ...],
            std: tuple[float, ...], shuffle: bool = False, augment: bool = False,
            rng: np.random.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Normalized float batches on the images' device. ``augment``: random 2-pixel shifts and
    horizontal flips (same random stream on every device). A folder set is decoded first
    (small sets: scoring; training streams with ``FolderImageSet.loader``)."""
    if not isinstance(data, ImageSet):
        data = data.decode()
    rng = rng or np.random.default_rng(0)
    order = rng.permutation(len(data)) if shuffle else np.arange(len(data))
    device = data.images.device
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    for start in range(0, len(order), batch_size):
        idx = torch.from_numpy(order[start:start + batch_size]).to(device)
        x = data.images[idx].float().div_(255.0)
        if augment:
            x = _augment(x, rng)
        yield (x - m) / s, data.labels[idx]


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    pad = 2
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = rng.integers(0, 2 * pad + 1, size=2)
    x = padded[:, :, dy:dy + h, dx:dx + w]
    flip = torch.from_numpy(rng.random(n) < 0.5).to(x.device)
    x[flip] = x[flip].flip(3)
    return x.contiguous()


# -- loaders -------------------------------------------------------------------------------
def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mobile-nas"


def _find_fashion_mnist_gz(data_dir: str | os.PathLike | None) -> Path | None:
    candidates: list[str | os.PathLike | None]
    if data_dir is not None:
        candidates = [data_dir]  # an explicit folder is the only place to look
    else:
        candidates = [os.environ.get("MOBILE_NAS_DATA"), DEBIAN_FASHION_MNIST]
    for c in candidates:
        if not c:
            continue
        for folder in (Path(c), Path(c) / "fashion-mnist", Path(c) / "FashionMNIST" / "raw"):
            if all((folder / f).exists() or (folder / f"{f}.gz").exists()
                   for f in _FMNIST_FILES):
                return folder
    if data_dir is not None:
        raise DatasetError(f"no Fashion-MNIST idx files in {str(data_dir)!r} (expected "
                           f"{', '.join(f + '.gz' for f in _FMNIST_FILES)})")
    return None


def _stage_raw(src: Path, root: Path) -> None:
    """Decompresses the idx files into ``root/FashionMNIST/raw`` as torchvision expects."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in _FMNIST_FILES:
        target = raw / f
        if target.exists():
            continue
        fd, tmp = tempfile.mkstemp(dir=raw, prefix=f".{f}.")
        with os.fdopen(fd, "wb") as out:
            if (src / f).exists():
                with open(src / f, "rb") as inp:
                    shutil.copyfileobj(inp, out)
            else:
                with gzip.open(src / f"{f}.gz", "rb") as inp:
                    shutil.copyfileobj(inp, out)
        os.replace(tmp, target)


def _fashion_mnist(data_dir, download: bool) -> tuple[ImageSet, ImageSet, list[str]]:
    from torchvision.datasets import FashionMNIST

    root = _cache_root() / "datasets"
    src = _find_fashion_mnist_gz(data_dir)
    try:
        if src is not None:
            _stage_raw(src, root)
            sets = [FashionMNIST(str(root), train=t, download=False) for t in (True, False)]
        elif download:
            sets = [FashionMNIST(str(root), train=t, download=True) for t in (True, False)]
        else:
            raise RuntimeError("download disabled")
    except (RuntimeError, OSError, EOFError) as exc:
        raise SettingError(
            "data_dir", "Fashion-MNIST not found ({cause}); install Debian's "
            "dataset-fashion-mnist, or put the four idx .gz files in a folder and pass {what} "
            "or set MOBILE_NAS_DATA", value=data_dir, cause=exc) from None
    out = [ImageSet(s.data.unsqueeze(1).contiguous(), s.targets.long()) for s in sets]
    return out[0], out[1], list(sets[0].classes)


def _cifar10(data_dir, download: bool) -> tuple[ImageSet, ImageSet, list[str]]:
    from torchvision.datasets import CIFAR10

    root = str(data_dir or os.environ.get("MOBILE_NAS_DATA") or _cache_root() / "datasets")
    try:
        sets = [CIFAR10(root, train=t, download=download) for t in (True, False)]
    except (RuntimeError, OSError) as exc:
        raise SettingError("data_dir", "CIFAR-10 not found in {root!r} and could not be "
                           "downloaded ({cause}); pass {what} with cifar-10-batches-py inside",
                           value=data_dir, root=root, cause=exc) from None
    out = [ImageSet(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(),
                    torch.tensor(s.targets, dtype=torch.long)) for s in sets]
    return out[0], out[1], list(sets[0].classes)


def _synthetic(seed: int) -> tuple[ImageSet, ImageSet, list[str]]:
    """10 classes of 1×28×28 blobs at class-dependent positions plus noise (unit tests only)."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> ImageSet:
        labels = rng.integers(0, 10, n)
        yy, xx = np.mgrid[:28, :28]
        cy, cx = 6 + (labels // 5) * 14, 4 + (labels % 5) * 5
        blobs = np.exp(-((yy[None] - cy[:, None, None]) ** 2
                         + (xx[None] - cx[:, None, None]) ** 2) / 8.0)
        imgs = np.clip(blobs * 200 + rng.normal(0, 25, blobs.shape), 0, 255).astype(np.uint8)
        return ImageSet(torch.from_numpy(imgs[:, None]), torch.from_numpy(labels).long())

    return make(6000), make(1000), [f"class{i}" for i in range(10)]
