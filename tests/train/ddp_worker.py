"""Run by tests/train/test_distributed.py, alone (one process) or under torchrun: trains a
tiny fmnist28 supernet on synthetic data twice and writes what this rank saw to
OUT/<mode>_rank<R>.json (per-step losses, a digest of its final weights and buffers), rank 0
the supernet to OUT/<mode>.pt; then a stand-alone network, frozen, to OUT/train.state
(OUT/train_rank<R>.json). Modes: ``batchnorm`` (as users train) and ``frozen`` (batch
norm on its running statistics and dropout off, so that 1 and 2 processes compute the same
thing up to summation order: what is left to compare is which steps, images and paths)."""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

import torch
from torch import nn

from mobile_nas.models.build import build_model
from mobile_nas.models.supernet import build_supernet
from mobile_nas.space import get_space
from mobile_nas.train.data import load_dataset
from mobile_nas.train.distributed import distributed
from mobile_nas.train.supernet import SupernetTrainConfig, train_supernet
from mobile_nas.train.trainer import train_model

MODES = ("batchnorm", "frozen")


def digest(module: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def freeze_statistics(module: nn.Module) -> None:
    """Batch norm and dropout stay in eval mode whatever ``train()`` asks."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.Dropout):
            m.eval()
            m.train = types.MethodType(lambda self, mode=True: self, m)


def main(out: Path, sampling: str = "uniform") -> None:
    torch.set_num_threads(1)
    config = SupernetTrainConfig(steps=6, batch_size=32, warmup_steps=2, augment=True,
                                 sampling=sampling, random_paths=1, train_subset=512)
    data = load_dataset("synthetic", val_size=100)
    with distributed("cpu") as dist:
        for mode in MODES:
            torch.manual_seed(1000 + dist.rank)  # different initial weights: rank 0's win
            supernet = build_supernet(get_space("fmnist28"))
            if mode == "frozen":
                freeze_statistics(supernet)
            result = train_supernet(supernet, data, config, checkpoint_path=out / f"{mode}.pt",
                                    progress=False,
                                    distributed=dist if dist.enabled else None)
            (out / f"{mode}_rank{dist.rank}.json").write_text(json.dumps({
                "losses": list(result.losses), "digest": digest(supernet),
                "world_size": result.world_size, "backend": result.backend}))
        # stand-alone training (DistributedDataParallel), statistics frozen; rank 0 writes
        # the training state after each epoch
        torch.manual_seed(1000 + dist.rank)
        model = build_model(get_space("fmnist28").smallest_arch())
        freeze_statistics(model)
        result = train_model(model, data, epochs=2, batch_size=32, train_subset=96,
                             val_subset=50, progress=False, distributed=dist if dist.enabled
                             else None, device="cpu", checkpoint_path=out / "train.state")
        (out / f"train_rank{dist.rank}.json").write_text(json.dumps({
            "losses": [h.train_loss for h in result.history], "digest": digest(model),
            "steps": result.optimizer_steps, "world_size": result.world_size,
            "val_accuracy": result.val_accuracy}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:])
