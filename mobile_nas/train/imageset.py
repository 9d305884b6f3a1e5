"""Images held in memory as uint8 tensors, with their labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ImageSet:
    """Images as uint8 N×C×H×W plus int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def shard(self, rank: int, world_size: int) -> ImageSet:
        """Images ``rank``, ``rank + world_size``, ... (evaluation split over processes)."""
        return ImageSet(self.images[rank::world_size], self.labels[rank::world_size])

    def to(self, device: torch.device | str) -> ImageSet:
        """The same images on ``device`` (small datasets are kept on the GPU whole)."""
        if self.images.device == torch.device(device):
            return self
        return ImageSet(self.images.to(device), self.labels.to(device))

    def subset(self, n: int | None, seed: int = 0) -> ImageSet:
        """A seeded random subset of ``n`` images (all when ``n`` is None or too large)."""
        if n is None or n >= len(self):
            return self
        idx = torch.from_numpy(np.random.default_rng(seed).permutation(len(self))[:n])
        return ImageSet(self.images[idx], self.labels[idx])
