"""Scoring architectures by training each one alone for a short while (MnasNet-style proxy)."""

from __future__ import annotations

from typing import Any

from mobile_nas.device import describe_device, resolve_device
from mobile_nas.models import build_model
from mobile_nas.search.evaluator import Evaluator
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.train.data import Dataset
from mobile_nas.train.trainer import evaluate_accuracy, train_model


class ProxyTrainEvaluator(Evaluator):
    """Validation accuracy of ``build_model(arch)`` after ``epochs`` epochs on a seeded
    subset of ``train_images`` training images (the project's training recipe,
    :func:`mobile_nas.train.trainer.train_model`), scored on ``val_images`` validation
    images. Slow (a training run per architecture) but free of weight-sharing bias; results
    are cached per architecture.
    """

    def __init__(self, *, space: SearchSpace, dataset: Dataset, epochs: int = 1,
                 train_images: int | None = 5000, val_images: int | None = 2000,
                 batch_size: int = 128, seed: int = 0,
                 device: str = "auto", amp: bool | None = None) -> None:
        super().__init__(space=space)
        self.dataset = dataset
        self.device, self.amp = resolve_device(device), amp
        self.val = dataset.val.subset(val_images, seed=seed + 2)
        self.settings: dict[str, Any] = {"epochs": epochs, "train_images": train_images,
                         "val_images": len(self.val), "batch_size": batch_size, "seed": seed,
                         "device": describe_device(self.device)}
        self.cache: dict[Architecture, float] = {}

    def evaluate(self, arch: Architecture) -> float:
        if arch not in self.cache:
            import torch

            s = self.settings
            torch.manual_seed(s["seed"])
            model = build_model(arch)
            train_model(model, self.dataset, epochs=s["epochs"], batch_size=s["batch_size"],
                        train_subset=s["train_images"], val_subset=min(200, len(self.val)),
                        seed=s["seed"], progress=False, device=self.device, amp=self.amp)
            self.cache[arch] = evaluate_accuracy(model, self.val, self.dataset.mean,
                                                 self.dataset.std)
        return self.cache[arch]

    def describe(self) -> dict[str, Any]:
        return {"name": "proxy", **self.settings}
