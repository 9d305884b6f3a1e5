"""Run by tests/train/test_distributed.py, alone (one process) or under torchrun: trains a
tiny fmnist28 supernet on synthetic data and writes what this rank saw to OUT/rank<R>.json
(per-step losses, a digest of its final weights and buffers)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch

from mobile_nas.models.supernet import build_supernet
from mobile_nas.space import get_space
from mobile_nas.train.data import load_dataset
from mobile_nas.train.distributed import distributed
from mobile_nas.train.supernet import SupernetTrainConfig, train_supernet


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main(out: Path, sampling: str = "uniform") -> None:
    torch.set_num_threads(1)
    config = SupernetTrainConfig(steps=6, batch_size=32, warmup_steps=2, augment=True,
                                 sampling=sampling, random_paths=1, train_subset=512)
    with distributed("cpu") as dist:
        torch.manual_seed(1000 + dist.rank)  # different initial weights: rank 0's must win
        supernet = build_supernet(get_space("fmnist28"))
        result = train_supernet(supernet, load_dataset("synthetic", val_size=100), config,
                                checkpoint_path=out / "supernet.pt", progress=False,
                                distributed=dist if dist.enabled else None)
        (out / f"rank{dist.rank}.json").write_text(json.dumps({
            "losses": list(result.losses), "digest": digest(supernet),
            "world_size": result.world_size, "backend": result.backend}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "uniform")
