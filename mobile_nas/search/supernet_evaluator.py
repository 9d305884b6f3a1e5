"""Scoring architectures with a trained weight-sharing supernet."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mobile_nas.device import describe_device, resolve_device
from mobile_nas.models.supernet import recalibrate_batchnorm
from mobile_nas.search.evaluator import Evaluator
from mobile_nas.space.architecture import Architecture
from mobile_nas.train.data import Dataset, batches


class SupernetEvaluator(Evaluator):
    """Validation accuracy of a supernet path after batch-norm recalibration.

    Calibration uses ``calib_batches`` fixed batches of ``calib_batch_size`` training images,
    scoring the first ``val_images`` of a seeded shuffle of the validation split (never the
    test split). Both are fixed at construction, so a path always gets the same score;
    results are cached per architecture.
    """

    def __init__(self, *, supernet: nn.Module, dataset: Dataset, calib_batches: int = 4,
                 calib_batch_size: int = 128, val_images: int | None = 2000,
                 batch_size: int = 500, seed: int = 0, source: str = "",
                 device: str | torch.device = "auto") -> None:
        # nn.Module's __getattr__ is typed Tensor | Module: the supernets set ``space``
        super().__init__(space=supernet.space)  # type: ignore[arg-type]
        dev = resolve_device(device)
        self.supernet = supernet.to(dev).eval()
        train = dataset.train.subset(calib_batches * calib_batch_size, seed=seed + 1).to(dev)
        mean, std = dataset.mean, dataset.std
        self.calib = [x for x, _ in batches(train, calib_batch_size, mean=mean, std=std)
                      ][:calib_batches]
        val = dataset.val.subset(val_images, seed=seed + 2).to(dev)
        self.val = list(batches(val, batch_size, mean=mean, std=std))
        self.n_val = len(val)
        self.cache: dict[Architecture, float] = {}
        self.settings = {"calib_batches": calib_batches, "calib_batch_size": calib_batch_size,
                         "val_images": self.n_val, "seed": seed, "supernet": source,
                         "device": describe_device(dev)}

    @torch.no_grad()
    def evaluate(self, arch: Architecture) -> float:
        if arch not in self.cache:
            self.supernet.set_arch(arch)  # type: ignore[operator]  # a supernet method
            recalibrate_batchnorm(self.supernet, self.calib)
            correct = sum(int((self.supernet(x).argmax(1) == y).sum()) for x, y in self.val)
            self.cache[arch] = correct / self.n_val
        return self.cache[arch]

    def describe(self) -> dict[str, Any]:
        return {"name": "supernet", **self.settings}
