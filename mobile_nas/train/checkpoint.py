"""The trained-model checkpoint (``model.pt``): weights plus everything a deployment needs.

A checkpoint holds only tensors and plain containers, so it loads with
``torch.load(..., weights_only=True)``: a file that tries to run code on load is refused.
Layout (``schema_version`` 1)::

    {"schema_version": 1, "kind": "mobile-nas-model", "arch": "<arch string>", "space": "S",
     "state_dict": {...}, "metrics": {"val_accuracy", "test_accuracy", ...},
     "dataset": {"name", "mean", "std", "classes", "input_shape"}, "recipe": {...},
     "versions": {"mobile_nas", "torch", "torchvision"}, "created": "<ISO date>"}
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import torch
from torch import nn

from mobile_nas import __version__
from mobile_nas.errors import MobileNasError
from mobile_nas.models.build import build_model
from mobile_nas.space import Architecture, get_space
from mobile_nas.weightfile import WeightFile

SCHEMA_VERSION = 1
KIND = "mobile-nas-model"


class CheckpointError(MobileNasError):
    """A model checkpoint that is missing, corrupt, unsafe or inconsistent."""


CHECKPOINT_FILE = WeightFile("model checkpoint", CheckpointError, SCHEMA_VERSION, kind=KIND)


@dataclass(frozen=True)
class ModelCheckpoint:
    """A trained network: its architecture, weights, metrics and input conventions."""

    arch: str
    space: str
    state_dict: dict[str, torch.Tensor]
    dataset: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.dataset["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.dataset["std"])

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.dataset["classes"])

    def architecture(self):
        """The :class:`~mobile_nas.space.Architecture`; raises ``CheckpointError``."""
        try:
            return Architecture.from_string(self.arch, self.space)
        except MobileNasError as exc:
            raise CheckpointError(f"checkpoint architecture does not fit space "
                                  f"{self.space!r}: {exc}") from None

    def build_model(self) -> nn.Module:
        """The network in eval mode with the checkpoint's weights (strictly matched)."""
        model = build_model(self.architecture())
        expected = model.state_dict()
        missing = sorted(set(expected) - set(self.state_dict))
        extra = sorted(set(self.state_dict) - set(expected))
        wrong = sorted(k for k in set(expected) & set(self.state_dict)
                       if tuple(expected[k].shape) != tuple(self.state_dict[k].shape))
        if missing or extra or wrong:
            detail = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                               for label, keys in (("missing", missing), ("unexpected", extra),
                                                   ("shape differs", wrong)) if keys)
            raise CheckpointError(f"weights do not match architecture {self.arch!r} ({detail})")
        model.load_state_dict(self.state_dict)
        return model.eval()

    def to_payload(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": KIND, "arch": self.arch,
                "space": self.space, "state_dict": self.state_dict, "metrics": self.metrics,
                "dataset": self.dataset, "recipe": self.recipe, "versions": self.versions,
                "created": self.created}


def versions() -> dict[str, str]:
    import torchvision

    return {"mobile_nas": str(__version__), "torch": str(torch.__version__),
            "torchvision": str(torchvision.__version__)}


def make_checkpoint(model: nn.Module, arch, dataset, *, metrics: dict[str, Any],
                    recipe: dict[str, Any]) -> ModelCheckpoint:
    """Bundles a trained ``model`` of ``arch`` with ``dataset``'s input conventions."""
    state = {k: v.detach().to("cpu", copy=True).contiguous()
             for k, v in model.state_dict().items()}  # device-independent
    return ModelCheckpoint(
        arch=arch.to_string(), space=arch.space, state_dict=state,
        dataset={"name": dataset.name, "mean": list(dataset.mean), "std": list(dataset.std),
                 "classes": list(dataset.classes), "input_shape": list(dataset.input_shape)},
        metrics=dict(metrics), recipe=dict(recipe), versions=versions(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def save_checkpoint(ckpt: ModelCheckpoint, path: str | os.PathLike) -> None:
    """Writes atomically; raises ``CheckpointError`` if the folder is missing."""
    CHECKPOINT_FILE.save(path, ckpt.to_payload())


def load_checkpoint(path: str | os.PathLike) -> ModelCheckpoint:
    """Reads a checkpoint with ``weights_only=True``; raises ``CheckpointError``."""
    data = CHECKPOINT_FILE.load(path)
    try:
        ckpt = ModelCheckpoint(
            arch=str(data["arch"]), space=str(data["space"]), state_dict=dict(data["state_dict"]),
            dataset=dict(data["dataset"]), metrics=dict(data.get("metrics") or {}),
            recipe=dict(data.get("recipe") or {}), versions=dict(data.get("versions") or {}),
            created=str(data.get("created", "")))
        for key in ("mean", "std", "classes"):
            if not isinstance(ckpt.dataset.get(key), list):
                raise KeyError(f"dataset.{key}")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{str(path)!r} lacks {exc}") from None
    try:
        get_space(ckpt.space)
    except MobileNasError:
        raise CheckpointError(f"{str(path)!r} is from unknown space {ckpt.space!r}") from None
    ckpt.architecture()  # the arch string must belong to its space
    return ckpt
