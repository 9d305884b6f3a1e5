"""ImageFolder datasets streamed from disk (``--dataset folder:PATH``).

``PATH/train/<class>/*.png|jpg|...`` and ``PATH/test/<class>/...`` (torchvision's
ImageFolder layout). Nothing is read into memory up front: a :class:`FolderImageSet` is a
list of files, and :meth:`FolderImageSet.loader` is a ``torch.utils.data.DataLoader`` whose
workers decode, resize to the space's input (224x224 for ``mobile224``) and augment (random
crop after ``size/14`` pixels of padding, horizontal flips) each image, handing uint8
batches to the training process, which normalises them on its device. Pinned memory when
training on CUDA; workers persist across epochs. Under torchrun a ``DistributedSampler``
gives each process its share of every epoch's shuffled order (``set_epoch`` per epoch); one
process uses the same sampler with one replica, so N processes with per-process batch
``B/N`` see the images one process sees with batch ``B``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, DistributedSampler

from mobile_nas.train.errors import DatasetError
from mobile_nas.train.imageset import ImageSet

if TYPE_CHECKING:
    from mobile_nas.train.distributed import Distributed

#: (channels, height, width) of folder images when no space says otherwise (earlier releases)
DEFAULT_FOLDER_SHAPE = (3, 32, 32)
#: images whose statistics give the normalisation (a seeded sample of the training split)
STATS_IMAGES = 512


def default_workers() -> int:
    """DataLoader workers when none are asked for: up to 4, at most one per CPU core."""
    return min(4, os.cpu_count() or 1)


class _Files(torch.utils.data.Dataset):
    """Decodes one file per item into a uint8 C×H×W tensor (runs in the workers)."""

    def __init__(self, samples: Sequence[tuple[str, int]], shape: tuple[int, int, int],
                 augment: bool) -> None:
        from torchvision import transforms

        self.samples = list(samples)
        self.mode = "L" if shape[0] == 1 else "RGB"
        size = shape[1:]
        steps = [transforms.Resize(size)]
        if augment:
            steps += [transforms.RandomCrop(size, padding=max(2, size[0] // 14)),
                      transforms.RandomHorizontalFlip()]
        self.transform = transforms.Compose([*steps, transforms.PILToTensor()])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path, label = self.samples[i]
        with Image.open(path) as img:
            return self.transform(img.convert(self.mode)), label


@dataclass(frozen=True)
class FolderImageSet:
    """Image files with class indices, decoded to ``shape`` (C, H, W) when read."""

    samples: tuple[tuple[str, int], ...]
    shape: tuple[int, int, int]

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.shape

    @property
    def labels(self) -> torch.Tensor:
        return torch.tensor([label for _, label in self.samples], dtype=torch.long)

    def select(self, indices: Sequence[int] | np.ndarray) -> FolderImageSet:
        return FolderImageSet(tuple(self.samples[int(i)] for i in indices), self.shape)

    def subset(self, n: int | None, seed: int = 0) -> FolderImageSet:
        """A seeded random subset of ``n`` files (the same draw as ``ImageSet.subset``)."""
        if n is None or n >= len(self):
            return self
        return self.select(np.random.default_rng(seed).permutation(len(self))[:n])

    def shard(self, rank: int, world_size: int) -> FolderImageSet:
        """Files ``rank``, ``rank + world_size``, ... (evaluation split over processes)."""
        return FolderImageSet(self.samples[rank::world_size], self.shape)

    def decode(self, augment: bool = False) -> ImageSet:
        """Every file decoded into memory (for small sets: calibration, scoring subsets)."""
        files = _Files(self.samples, self.shape, augment)
        if not len(files):
            return ImageSet(torch.zeros((0, *self.shape), dtype=torch.uint8), self.labels)
        return ImageSet(torch.stack([files[i][0] for i in range(len(files))]), self.labels)

    def to(self, device: torch.device | str) -> ImageSet:
        """The files decoded into memory on ``device`` (as ``ImageSet.to``: for the small
        subsets that scoring keeps on the device; training streams with :meth:`loader`)."""
        return self.decode().to(device)

    @property
    def images(self) -> torch.Tensor:
        """Every image decoded (uint8 N×C×H×W): for small sets only."""
        return self.decode().images

    def loader(self, batch_size: int, *, shuffle: bool, augment: bool, seed: int = 0,
               distributed: Distributed | None = None, workers: int | None = None,
               device: torch.device | str = "cpu") -> FolderLoader:
        """A DataLoader over this process's share (``batch_size`` per process)."""
        workers = default_workers() if workers is None else workers
        files = _Files(self.samples, self.shape, augment)
        world = distributed.world_size if distributed is not None else 1
        rank = distributed.rank if distributed is not None else 0
        sampler: DistributedSampler[int] = DistributedSampler(
            files, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        dl = DataLoader(files, batch_size=batch_size, sampler=sampler, num_workers=workers,
                        pin_memory=torch.device(device).type == "cuda",
                        persistent_workers=workers > 0, drop_last=False)
        return FolderLoader(dl, sampler)


@dataclass(frozen=True)
class FolderLoader:
    """A DataLoader and its DistributedSampler; :meth:`epoch` reshuffles per epoch."""

    dataloader: torch.utils.data.DataLoader
    sampler: torch.utils.data.DistributedSampler

    def __len__(self) -> int:
        return len(self.dataloader)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The uint8 batches of ``epoch`` (its own shuffled order, the same on every rank)."""
        self.sampler.set_epoch(epoch)
        return iter(self.dataloader)


class _StepSampler(torch.utils.data.Sampler):
    """Per supernet step ``s`` from ``start``: this rank's share of the global batch
    ``default_rng([seed, s]).integers(0, n, batch_size)`` (the draw the in-memory path makes;
    shared by DistributedSampler's rule)."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, steps: int,
                 rank: int, world_size: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.start, self.steps, self.rank, self.world = start, steps, rank, world_size

    def __len__(self) -> int:
        return self.steps - self.start

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.steps):
            idx = np.random.default_rng([self.seed, step]).integers(0, self.n, self.batch_size)
            pad = (-len(idx)) % self.world
            idx = np.concatenate([idx, idx[:pad]])
            yield idx[self.rank::self.world].tolist()


def step_loader(train: FolderImageSet, *, batch_size: int, seed: int, start: int, steps: int,
                augment: bool, distributed: Distributed | None = None,
                workers: int | None = None,
                device: torch.device | str = "cpu") -> torch.utils.data.DataLoader:
    """uint8 batches of supernet steps ``start..steps-1`` (this rank's share of each)."""
    workers = default_workers() if workers is None else workers
    world = distributed.world_size if distributed is not None else 1
    rank = distributed.rank if distributed is not None else 0
    sampler = _StepSampler(len(train), batch_size, seed, start, steps, rank, world)
    return DataLoader(_Files(train.samples, train.shape, augment), batch_sampler=sampler,
                      num_workers=workers, pin_memory=torch.device(device).type == "cuda")


def read_folder(path: Path, shape: tuple[int, int, int] | None
                ) -> tuple[FolderImageSet, FolderImageSet, list[str]]:
    """(train, test, classes) of an ImageFolder dataset; raises ``DatasetError``."""
    from torchvision.datasets import ImageFolder

    if not (path / "train").is_dir() or not (path / "test").is_dir():
        raise DatasetError(f"ImageFolder dataset {str(path)!r} needs train/ and test/ folders")
    try:
        sets = [ImageFolder(str(path / split)) for split in ("train", "test")]
    except (FileNotFoundError, OSError) as exc:
        raise DatasetError(f"ImageFolder dataset {str(path)!r}: {exc}") from None
    if sets[0].classes != sets[1].classes:
        raise DatasetError(f"train/ and test/ of {str(path)!r} have different classes")
    channels, h, w = shape or DEFAULT_FOLDER_SHAPE
    out = [FolderImageSet(tuple((p, int(c)) for p, c in s.samples), (channels, h, w))
           for s in sets]
    return out[0], out[1], list(sets[0].classes)


def folder_stats(train: FolderImageSet, seed: int = 0
                 ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a seeded sample of ``STATS_IMAGES`` training images."""
    floats = train.subset(STATS_IMAGES, seed).decode().images.float() / 255.0
    return tuple(floats.mean(dim=(0, 2, 3)).tolist()), tuple(floats.std(dim=(0, 2, 3)).tolist())
