"""Training the weight-sharing supernet.

``sampling="uniform"`` is single-path one-shot (Guo et al.): one random path per batch.
``"sandwich"`` is BigNAS/OFA's sandwich rule: every step trains the largest path on the labels,
and the smallest path plus ``random_paths`` random ones, each either on the labels or, with
``distill`` > 0, on a mix with the largest path's soft predictions (in-place distillation,
``distill`` being the weight of the KL term). Batches and paths come
from per-step seeds, so a run resumed from a checkpoint (written atomically every
``checkpoint_every`` steps, loaded with ``weights_only=True``) continues exactly where the
killed one stopped. The file also serves ``--supernet PATH`` in later searches.

Under torchrun (``distributed``): every rank draws the same step seed, hence the same global
batch and the same sampled path(s); each trains that path on its share of the batch, and
the gradients are averaged with one all-reduce per step, after every path of the step is
backpropagated (DistributedDataParallel expects one forward per backward over a fixed set of
used parameters; the sandwich rule runs several paths per step). So N processes take the
steps one process takes on the same images and paths, at the same learning rate
(``batch_size`` is the global batch); batch norm normalises each rank's share. Rank 0 alone
reads (then broadcasts) and writes the file. A folder dataset streams each step's images
through DataLoader workers.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mobile_nas import pretrained
from mobile_nas.device import autocast, choose_precision, grad_scaler, resolve_device
from mobile_nas.errors import MobileNasError
from mobile_nas.models.supernet import build_supernet, supernet_space
from mobile_nas.progress import progress_bar
from mobile_nas.space.base import SearchSpace
from mobile_nas.train.data import Dataset, _augment
from mobile_nas.train.distributed import (
    Distributed,
    all_reduce_sum,
    average_gradients,
    broadcast_state,
    on_main,
    shard,
)
from mobile_nas.train.folder import step_loader
from mobile_nas.train.imageset import ImageSet
from mobile_nas.weightfile import WeightFile

SUPERNET_SCHEMA_VERSION = 1
SAMPLING = ("uniform", "sandwich")
OPTIMIZERS = ("sgd", "adamw")


class SupernetError(MobileNasError):
    """A bad supernet setting or a supernet file that cannot be used."""


#: Training files (``torch.save``, resumable) and finished, shipped ones (safetensors).
SUPERNET_FILE = WeightFile("supernet file", SupernetError, SUPERNET_SCHEMA_VERSION)
SHIPPED_SUPERNET_FILE = WeightFile("supernet file", SupernetError, pretrained.SCHEMA_VERSION,
                                   kind=pretrained.FORMAT)


@dataclass(frozen=True)
class SupernetTrainConfig:
    """How long and how to train. ``train_subset``: seeded subset of the training split."""

    steps: int = 2000
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    warmup_steps: int = 50
    sampling: str = "uniform"
    random_paths: int = 1  # sandwich: random paths per step besides the smallest and largest
    distill: float = 0.0  # sandwich: weight of in-place distillation from the largest path
    optimizer: str = "sgd"  # SGD with Nesterov momentum, or AdamW
    train_subset: int | None = None
    augment: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or not self.lr > 0:
            raise SupernetError(f"bad supernet training settings: steps={self.steps}, "
                                f"batch_size={self.batch_size}, lr={self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise SupernetError(f"unknown supernet optimizer {self.optimizer!r}; known: "
                                f"{', '.join(OPTIMIZERS)}")
        if self.sampling not in SAMPLING:
            raise SupernetError(f"unknown supernet sampling {self.sampling!r}; known: "
                                f"{', '.join(SAMPLING)}")
        if self.random_paths < 0 or not 0.0 <= self.distill <= 1.0:
            raise SupernetError(f"bad sandwich settings: random_paths={self.random_paths} "
                                f"(>= 0), distill={self.distill} (in [0, 1])")


@dataclass(frozen=True)
class SupernetTrainResult:
    steps: int
    resumed_from_step: int
    final_loss: float
    seconds: float
    losses: tuple[float, ...] = ()  # each step's loss (mean over processes) in this call
    world_size: int = 1
    backend: str = "none"


def train_supernet(supernet: nn.Module, dataset: Dataset, config: SupernetTrainConfig, *,
                   checkpoint_path: str | os.PathLike | None = None,
                   checkpoint_every: int = 100, progress: bool = True,
                   device: str | torch.device = "auto",
                   amp: bool | None = None, distributed: Distributed | None = None,
                   workers: int | None = None) -> SupernetTrainResult:
    """Trains ``supernet`` in place on ``device`` (mixed precision ``amp``: default on for
    CUDA) and leaves the finished supernet in ``checkpoint_path`` (device-independent).
    ``distributed``: this process's place in a torchrun job (its device replaces
    ``device``; see the module docstring). ``workers``: DataLoader workers of a folder
    dataset.

    If that file holds a run of the same config, training resumes from it (or, finished,
    is just loaded). Seeds torch's global RNG per step (dropout masks).
    """
    dev = distributed.device if distributed is not None else resolve_device(device)
    precision = choose_precision(dev, amp)
    world = distributed.world_size if distributed is not None else 1
    if distributed is not None:
        distributed.per_process_batch(config.batch_size)
    main = distributed is None or distributed.is_main
    space = supernet_space(supernet)
    supernet.to(dev)
    train = dataset.train.subset(config.train_subset, seed=config.seed)
    if isinstance(train, ImageSet):
        train = train.to(dev)
    params = [p for p in supernet.parameters()]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=config.lr) if config.optimizer == "adamw" else \
        torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    start = 0
    state = None
    if checkpoint_path is not None:
        state = on_main(distributed, lambda: load_supernet_file(checkpoint_path, space)
                        if Path(checkpoint_path).exists() else None)
    if state is not None:
        # files written before a setting existed hold its default (e.g. optimizer "sgd")
        saved = {**asdict(SupernetTrainConfig()), **state["config"]}
        if saved == asdict(config):
            supernet.load_state_dict(state["state_dict"])
            start = int(state["steps_done"])
            if start >= config.steps:  # already trained: reuse it
                supernet.eval()
                return SupernetTrainResult(config.steps, start, float("nan"), 0.0,
                                           world_size=world,
                                           backend=_backend(distributed))
            opt.load_state_dict(state["optimizer"])
    broadcast_state(distributed, supernet)  # every rank starts from rank 0's weights
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    mean = torch.tensor(dataset.mean, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(dataset.std, device=dev).view(1, -1, 1, 1)
    scaler = grad_scaler(dev, precision)
    largest = smallest = None
    if config.sampling == "sandwich":
        if not space.has_extreme_archs:
            raise SupernetError(f"sandwich sampling needs a largest path; space {space.name!r} "
                                f"has none (use sampling='uniform')")
        extreme = space.extreme_archs()
        largest, smallest = extreme["largest"], extreme["smallest"]
    supernet.train()
    supernet.to(memory_format=torch.channels_last)
    t0 = time.time()
    loss_value = float("nan")
    losses: list[float] = []
    bar = progress_bar(total=config.steps, initial=start, desc="supernet", unit="step",
                       disable=not (progress and main), leave=False)
    streamed = None
    if not isinstance(train, ImageSet):
        streamed = iter(step_loader(train, batch_size=config.batch_size, seed=config.seed,
                                    start=start, steps=config.steps, augment=config.augment,
                                    distributed=distributed, workers=workers, device=dev))
    for step in range(start, config.steps):
        rng = np.random.default_rng([config.seed, step])
        torch.manual_seed(config.seed * 1_000_003 + step)  # dropout: same masks on resume
        for group in opt.param_groups:
            group["lr"] = config.lr * _lr_factor(step, config)
        idx = torch.from_numpy(rng.integers(0, len(train), config.batch_size)).to(dev)
        if streamed is None:  # the global batch, then this rank's share
            x = train.images[idx].float().div_(255.0)
            if config.augment:
                x = _augment(x, rng)
            x, y = shard(distributed, x, train.labels[idx])
        else:  # decoded (and augmented) by the workers: this rank's share
            x, y = next(streamed)
            x, y = x.to(dev, non_blocking=True).float().div_(255.0), y.to(dev)
        x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        if largest is None:
            with autocast(dev, precision):
                loss = loss_fn(supernet(x, space.sample(rng)), y)
            scaler.scale(loss).backward()
        else:
            loss = _sandwich_step(supernet, x, y, loss_fn, config, largest,
                                  [smallest] + [space.sample(rng)
                                                for _ in range(config.random_paths)],
                                  lambda: autocast(dev, precision), scaler)
        average_gradients(distributed, params)
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(params, 5.0)
        scaler.step(opt)
        scaler.update()
        loss_value = all_reduce_sum(distributed, [float(loss.detach())])[0] / world
        losses.append(loss_value)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_value:.3f}")
        done = step + 1
        if done == config.steps:  # batch-norm statistics: rank 0's on every rank
            broadcast_state(distributed, supernet, buffers_only=True)
        if main and checkpoint_path is not None and (done % checkpoint_every == 0
                                                     or done == config.steps):
            extra: dict[str, Any] = {"split": dataset.split}
            if distributed is not None and world > 1:  # a one-process file keeps its layout
                extra["distributed"] = distributed.to_json(config.batch_size)
            save_supernet(checkpoint_path, supernet, config=config, steps_done=done,
                          optimizer=opt if done < config.steps else None, extra=extra)
    bar.close()
    supernet.to(memory_format=torch.contiguous_format)
    supernet.eval()
    return SupernetTrainResult(config.steps, start, loss_value, time.time() - t0,
                               tuple(losses), world, _backend(distributed))


def _backend(distributed: Distributed | None) -> str:
    return distributed.backend if distributed is not None else "none"


def _sandwich_step(supernet: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: nn.Module,
                   config: SupernetTrainConfig, largest, others, autocast,
                   scaler) -> torch.Tensor:
    """Backpropagates the largest path on the labels and ``others`` on labels mixed with the
    largest path's soft predictions (weight ``config.distill``); returns the largest's loss."""
    with autocast():
        logits = supernet(x, largest)
        loss = loss_fn(logits, y)
    scaler.scale(loss).backward()
    teacher = torch.softmax(logits.detach().float(), dim=1)
    for arch in others:
        with autocast():
            out = supernet(x, arch)
            student = loss_fn(out, y)
        if config.distill > 0:
            kd = nn.functional.kl_div(torch.log_softmax(out.float(), dim=1), teacher,
                                      reduction="batchmean")
            student = (1 - config.distill) * student + config.distill * kd
        scaler.scale(student).backward()
    return loss


def _lr_factor(step: int, config: SupernetTrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def save_supernet(path: str | os.PathLike, supernet: nn.Module, *,
                  config: SupernetTrainConfig, steps_done: int,
                  optimizer: torch.optim.Optimizer | None = None,
                  extra: dict[str, Any] | None = None) -> None:
    """Writes the state dict plus metadata atomically (``torch.save`` of plain data)."""
    state: dict[str, Any] = {
        "space": supernet_space(supernet).name,
        "state_dict": {k: v.detach().cpu() for k, v in supernet.state_dict().items()},
        "config": asdict(config),
        "steps_done": steps_done, **(extra or {}),
    }
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    SUPERNET_FILE.save(path, state)


def save_supernet_safetensors(path: str | os.PathLike, supernet: nn.Module, *,
                              config: SupernetTrainConfig, steps_done: int,
                              metadata: dict[str, Any] | None = None) -> None:
    """Writes a finished supernet as safetensors (floating tensors as float16) with its
    settings and ``metadata`` (JSON-encoded values) in the file's metadata, atomically."""
    tensors = {k: (v.detach().half() if v.is_floating_point() else v.detach())
               for k, v in supernet.state_dict().items()}
    SHIPPED_SUPERNET_FILE.save_safetensors(path, tensors, {
        "space": supernet_space(supernet).name, "config": asdict(config),
        "steps_done": steps_done,
        **(metadata or {})})


def load_supernet_file(path: str | os.PathLike, space: SearchSpace) -> dict[str, Any]:
    """Reads a supernet file (``.safetensors``, or ``torch.save`` data read with
    ``weights_only=True``) and checks its schema and space."""
    if str(path).endswith(".safetensors"):
        tensors, meta = SHIPPED_SUPERNET_FILE.load_safetensors(path)
        state = {**meta, "schema_version": SUPERNET_SCHEMA_VERSION,
                 "state_dict": {k: v.float() if v.is_floating_point() else v
                                for k, v in tensors.items()}}
    else:
        state = SUPERNET_FILE.load(path)
    if state.get("space") != space.name:
        raise SupernetError(f"supernet {str(path)!r} was trained for space "
                            f"{state.get('space')!r}, not {space.name!r}")
    return state


def supernet_split(path: str | os.PathLike, space: SearchSpace) -> dict[str, Any] | None:
    """The train/validation split a supernet file was trained beside (dataset, split_seed,
    val_size), or None for a file that does not record it (written before it was)."""
    state = load_supernet_file(path, space)
    if isinstance(state.get("split"), dict):
        return dict(state["split"])
    if all(k in state for k in ("dataset", "split_seed", "val_size")):  # shipped files
        return {k: state[k] for k in ("dataset", "split_seed", "val_size")}
    return None


def load_supernet(path: str | os.PathLike, space: SearchSpace) -> nn.Module:
    """A trained supernet from ``path``; refuses unfinished training runs."""
    state = load_supernet_file(path, space)
    cfg = state.get("config", {})
    if state.get("steps_done", 0) < cfg.get("steps", 0):
        raise SupernetError(f"supernet {str(path)!r} is unfinished ({state['steps_done']}/"
                            f"{cfg['steps']} steps); rerun the search with --resume")
    supernet = build_supernet(space)
    try:
        supernet.load_state_dict(state["state_dict"])
    except RuntimeError as exc:
        raise SupernetError(f"supernet {str(path)!r} does not fit space {space.name!r}: "
                            f"{str(exc).splitlines()[0]}") from None
    supernet.eval()
    return supernet
