"""Stand-alone training of one network: the recipe for small mobile nets on a CPU.

Recipe: SGD with Nesterov momentum (or AdamW), per-step cosine learning-rate decay after a
short linear warm-up, label smoothing, light augmentation (2-pixel shifts and flips from
:func:`mobile_nas.train.data.batches`), validation accuracy after every epoch. Training runs in
the ``channels_last`` memory format, which made depthwise-heavy fmnist28 networks train 1.7-2x
faster on this project's CPU (median network 291 -> 508 images/s on one thread); the weights
are handed back in the default format.

With ``checkpoint_path`` the full training state (weights, optimizer, schedule, history) is
written atomically after each epoch; ``resume=True`` continues a killed run from its last
completed epoch and yields the same weights as an uninterrupted run (per-epoch seeds; a
folder dataset's worker augmentation is not replayed bit for bit).
Checkpoints hold only tensors and plain containers and load with ``weights_only=True``.

Under torchrun (``distributed``, :mod:`mobile_nas.train.distributed`) the model is wrapped in
DistributedDataParallel: ``batch_size`` is the global batch, every process draws the
one-process run's batch of each step and trains on its share of it (a folder dataset: its
``DistributedSampler`` share), the learning rate is the one-process run's (no scaling: the
global batch is unchanged), validation is split over the processes and summed, and rank 0
alone reads and writes the checkpoints.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mobile_nas.device import (
    autocast,
    choose_precision,
    describe_device,
    grad_scaler,
    resolve_device,
)
from mobile_nas.errors import MobileNasError, SettingError
from mobile_nas.models.build import build_model
from mobile_nas.progress import progress_bar
from mobile_nas.space.scaled import scaled_name
from mobile_nas.train.checkpoint import CheckpointError, make_checkpoint, save_checkpoint
from mobile_nas.train.data import Dataset, batches
from mobile_nas.train.distributed import (
    Distributed,
    all_reduce_sum,
    barrier,
    broadcast_state,
    on_main,
    shard,
)
from mobile_nas.train.folder import FolderImageSet
from mobile_nas.train.imageset import ImageSet
from mobile_nas.weightfile import WeightFile

OPTIMIZERS = ("sgd", "adamw")
#: Default peak learning rate and weight decay per optimizer.
DEFAULT_LR = {"sgd": 0.1, "adamw": 2e-3}
DEFAULT_WEIGHT_DECAY = {"sgd": 4e-5, "adamw": 0.05}
CHECKPOINT_SCHEMA = 1


class TrainError(MobileNasError):
    """Bad training settings or a checkpoint that cannot be resumed."""


TRAINING_STATE_FILE = WeightFile("training checkpoint", TrainError, CHECKPOINT_SCHEMA,
                                 kind="mobile-nas-training-state")


@dataclass(frozen=True)
class EpochStats:
    """What one epoch did; ``seconds`` is wall-clock time of training plus validation."""

    epoch: int
    lr: float
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    """History of a training run. Accuracies are fractions in [0, 1]."""

    history: tuple[EpochStats, ...]
    epochs: int
    train_images: int
    resumed_from_epoch: int  # 0 when the run started from scratch
    seconds: float  # wall-clock time spent in this call (not counting resumed epochs)
    device: str = "cpu"  # where it trained, e.g. "cuda:0 (NVIDIA H200)"
    precision: str = "fp32"
    optimizer_steps: int = 0  # steps taken in all (resumed epochs included)
    world_size: int = 1  # processes that trained it (torchrun)
    backend: str = "none"  # their process group's backend: gloo, nccl, none
    global_batch: int = 0  # images per optimizer step over all processes

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy after the last epoch."""
        return self.history[-1].val_accuracy if self.history else float("nan")

    @property
    def best_val_accuracy(self) -> float:
        return max((h.val_accuracy for h in self.history), default=float("nan"))

    def to_json(self) -> dict:
        return {"epochs": self.epochs, "train_images": self.train_images,
                "resumed_from_epoch": self.resumed_from_epoch, "seconds": self.seconds,
                "device": self.device, "precision": self.precision,
                "optimizer_steps": self.optimizer_steps, "world_size": self.world_size,
                "backend": self.backend, "global_batch": self.global_batch,
                "val_accuracy": self.val_accuracy, "best_val_accuracy": self.best_val_accuracy,
                "history": [asdict(h) for h in self.history]}


def evaluate_accuracy(model: nn.Module, imageset: ImageSet | FolderImageSet,
                      mean: tuple[float, ...], std: tuple[float, ...], batch_size: int = 512,
                      *, distributed: Distributed | None = None,
                      workers: int | None = None) -> float:
    """Top-1 accuracy (fraction) of ``model`` in eval mode on ``imageset``, computed on the
    device that holds the model's weights (a folder set streamed through ``workers``
    DataLoader workers). With ``distributed`` each process scores its share and the counts
    are summed: every rank returns the same accuracy."""
    if len(imageset) == 0:
        raise TrainError("cannot evaluate accuracy on an empty image set")
    part = imageset if distributed is None or not distributed.enabled else \
        imageset.shard(distributed.rank, distributed.world_size)
    counted = _correct(model, part, mean, std, batch_size, workers) if len(part) else 0
    correct, total = all_reduce_sum(distributed, [counted, len(part)])
    return correct / total


def _correct(model: nn.Module, imageset: ImageSet | FolderImageSet, mean, std,
             batch_size: int, workers: int | None) -> int:
    dev = _device_of(model)
    was_training = model.training
    model.eval()
    correct = 0
    with torch.inference_mode():
        if isinstance(imageset, ImageSet):
            stream = batches(imageset.to(dev), batch_size, mean=mean, std=std)
        else:
            loader = imageset.loader(batch_size, shuffle=False, augment=False,
                                     workers=workers, device=dev)
            stream = _normalized(loader.epoch(0), mean, std, dev)
        for x, y in stream:
            correct += int((model(_to_format(x)).argmax(1) == y).sum())
    model.train(was_training)
    return correct


def _normalized(stream, mean, std, dev: torch.device):
    """Float batches on ``dev`` from a folder loader's uint8 batches."""
    m = torch.tensor(mean, device=dev).view(1, -1, 1, 1)
    s = torch.tensor(std, device=dev).view(1, -1, 1, 1)
    for x, y in stream:
        x = x.to(dev, non_blocking=True).float().div_(255.0)
        yield (x - m) / s, y.to(dev, non_blocking=True)


def train_model(model: nn.Module, dataset: Dataset, *, epochs: int, batch_size: int = 128,
                lr: float | None = None, optimizer: str = "sgd",
                weight_decay: float | None = None, label_smoothing: float = 0.1,
                warmup_epochs: float = 0.3, train_subset: int | None = None,
                val_subset: int | None = None, seed: int = 0, progress: bool = True,
                checkpoint_path: str | os.PathLike | None = None, resume: bool = False,
                on_epoch: Callable[[EpochStats], None] | None = None,
                device: str | torch.device = "auto", amp: bool | None = None,
                distributed: Distributed | None = None,
                workers: int | None = None) -> TrainResult:
    """Trains ``model`` in place on ``dataset.train`` and validates on ``dataset.val``.

    ``train_subset`` / ``val_subset``: seeded random subsets (proxy training). ``on_epoch`` is
    called after each epoch (e.g. to report to an Optuna pruner; it may raise to stop).
    ``device``: ``auto|cpu|cuda[:N]|mps`` (see :mod:`mobile_nas.device`); in-memory data
    moves to it once, a folder dataset streams through ``workers`` DataLoader workers
    (default :func:`~mobile_nas.train.folder.default_workers`). ``amp``: mixed precision
    (default: on for CUDA only). The model stays on ``device``. ``distributed``: this
    process's place in a torchrun job (its device replaces ``device``; see the module
    docstring). Raises :class:`TrainError` on bad settings or a checkpoint of a different
    run.
    """
    dev = distributed.device if distributed is not None else resolve_device(device)
    precision = choose_precision(dev, amp)
    world = distributed.world_size if distributed is not None else 1
    if optimizer not in OPTIMIZERS:
        raise TrainError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise TrainError(f"{name} must be a positive integer, got {value!r}")
    lr = DEFAULT_LR[optimizer] if lr is None else float(lr)
    weight_decay = DEFAULT_WEIGHT_DECAY[optimizer] if weight_decay is None else weight_decay
    if not lr > 0:
        raise TrainError(f"learning rate must be positive, got {lr!r}")
    local_batch = distributed.per_process_batch(batch_size) if distributed is not None \
        else batch_size
    train = dataset.train.subset(train_subset, seed)
    val = dataset.val.subset(val_subset, seed)
    if len(train) == 0 or len(val) == 0:
        raise TrainError("training and validation sets must not be empty")
    model.to(dev)
    loader = None
    if isinstance(train, ImageSet):
        train = train.to(dev)
    else:
        loader = train.loader(local_batch, shuffle=True, augment=True, seed=seed,
                              distributed=distributed, workers=workers, device=dev)
    if isinstance(val, ImageSet):
        val = val.to(dev)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total_steps = epochs * steps_per_epoch
    warmup_steps = min(int(warmup_epochs * steps_per_epoch), total_steps // 2)

    opt = _make_optimizer(model, optimizer, lr, weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _cosine(warmup_steps, total_steps))
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    config = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
              "weight_decay": float(weight_decay), "label_smoothing": float(label_smoothing),
              "warmup_epochs": float(warmup_epochs), "train_images": len(train),
              "val_images": len(val), "seed": seed}
    history: list[EpochStats] = []
    start_epoch = 0
    if checkpoint_path is not None and resume:
        state = on_main(distributed, lambda: TRAINING_STATE_FILE.load(checkpoint_path)
                        if Path(checkpoint_path).exists() else None)
        if state is not None:
            history, start_epoch = _apply_state(state, checkpoint_path, model, opt, sched,
                                                config)

    t0 = time.perf_counter()
    mean, std = dataset.mean, dataset.std
    model.to(memory_format=torch.channels_last)
    net = model
    if distributed is not None and distributed.enabled:
        # wrapping broadcasts rank 0's weights and buffers: every rank starts the same
        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda"
                                      else None)
    main = distributed is None or distributed.is_main
    scaler = grad_scaler(dev, precision)
    for epoch in range(start_epoch, epochs):
        t_epoch = time.perf_counter()
        torch.manual_seed(seed * 100_003 + epoch)
        rng = np.random.default_rng([seed, epoch])
        net.train()
        loss_sum, correct, seen = 0.0, 0, 0
        lr_now = opt.param_groups[0]["lr"]
        bar = _progress(steps_per_epoch, f"epoch {epoch + 1}/{epochs}", progress and main)
        if loader is None:  # the one-process batch stream, each rank keeping its share
            stream = (shard(distributed, x, y) for x, y in batches(
                train, batch_size, mean=mean, std=std, shuffle=True, augment=True, rng=rng))
        else:
            stream = _normalized(loader.epoch(epoch), mean, std, dev)
        for x, y in stream:
            with autocast(dev, precision):
                logits = net(_to_format(x))
                loss = criterion(logits, y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            n = len(y)
            loss_sum += float(loss.detach()) * n
            correct += int((logits.argmax(1) == y).sum())
            seen += n
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                                refresh=False)
        loss_total, correct_total, seen_total = all_reduce_sum(distributed,
                                                               [loss_sum, correct, seen])
        # DDP keeps parameters equal; batch-norm statistics are each rank's own: rank 0's
        broadcast_state(distributed, model, buffers_only=True)
        if not math.isfinite(loss_total):
            if bar is not None:
                bar.close()
            raise TrainError(f"training diverged in epoch {epoch + 1} (loss is not finite); "
                             f"lower the learning rate (now {lr:g})")
        val_acc = evaluate_accuracy(model, val, mean, std, distributed=distributed,
                                    workers=workers)
        stats = EpochStats(epoch + 1, lr_now, loss_total / seen_total,
                           correct_total / seen_total, val_acc,
                           time.perf_counter() - t_epoch)
        if bar is not None:
            bar.set_postfix(loss=f"{stats.train_loss:.3f}", acc=f"{stats.train_accuracy:.3f}",
                            val=f"{val_acc:.4f}")
            bar.close()
        history.append(stats)
        if checkpoint_path is not None and main:
            _save_state(checkpoint_path, model, opt, sched, config, history)
        if on_epoch is not None:
            on_epoch(stats)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return TrainResult(tuple(history), epochs, len(train), start_epoch,
                       time.perf_counter() - t0, describe_device(dev), precision.name,
                       optimizer_steps=int(sched.last_epoch), world_size=world,
                       backend=distributed.backend if distributed is not None else "none",
                       global_batch=batch_size)


# -- pieces ----------------------------------------------------------------------------------
def _device_of(model: nn.Module) -> torch.device:
    return next(iter(model.parameters()), torch.empty(0)).device


def _to_format(x: torch.Tensor) -> torch.Tensor:
    """Image batches in ``channels_last`` (what the model's weights use while training)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def _make_optimizer(model: nn.Module, name: str, lr: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    """No weight decay on biases and normalization parameters (1-D tensors)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)


def _cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    return progress_bar(total=total, desc=desc, unit="step", leave=False)


def _save_state(path, model, opt, sched, config, history) -> None:
    TRAINING_STATE_FILE.save(path, {
        "config": config, "epoch": history[-1].epoch, "history": [asdict(h) for h in history],
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": opt.state_dict(), "scheduler": sched.state_dict()})


def _apply_state(state, path, model, opt, sched, config) -> tuple[list[EpochStats], int]:
    """Loads a training state read from ``path`` into the model, optimizer and schedule."""
    diff = sorted(k for k in config if state["config"].get(k) != config[k])
    if diff:
        shown = ", ".join(f"{k}={state['config'].get(k)!r} (now {config[k]!r})" for k in diff)
        raise TrainError(f"cannot resume from {str(path)!r}: it is a different run: {shown}")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise TrainError(f"cannot resume from {str(path)!r}: its weights belong to a "
                         f"different architecture") from None
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    history = [EpochStats(**h) for h in state["history"]]
    return history, int(state["epoch"])


def check_fits_dataset(arch, dataset: Dataset) -> None:
    """Raises :class:`TrainError` (one line) when ``arch``'s network cannot consume
    ``dataset``: another input shape or class count; for a cell space a
    :class:`~mobile_nas.errors.SettingError` naming the size knobs that fit
    (``input_size``, ``channels``, ``num_classes`` of
    :class:`~mobile_nas.space.scaled.SizeKnobs`)."""
    space = arch.search_space
    shape, classes = space.input_shape, space.num_classes
    data_shape, data_classes = dataset.input_shape, len(dataset.classes)
    if shape == data_shape and classes == data_classes:
        return
    have = "x".join(map(str, shape)) + f" inputs and {classes} classes"
    want = "x".join(map(str, data_shape)) + f" images in {data_classes} classes"
    msg = f"space {space.name!r} takes {have}, dataset {dataset.name!r} has {want}"
    if space.supports_scaling:
        c, h, w = data_shape
        knobs = [(k, v) for k, v, differs in (
            ("input_size", h, h == w and shape[1:] != data_shape[1:]),
            ("channels", c, c != shape[0]), ("num_classes", data_classes, data_classes != classes))
            if differs]
        fit = scaled_name(space.name.split("@", 1)[0], cells=space.cells,
                          filters=space.filters, input_shape=data_shape,
                          num_classes=data_classes)
        if h == w:  # the knobs as {what} 28 {others[0]} 1
            with_knobs = " ".join(("{what}" if i == 0 else f"{{others[{i - 1}]}}") + f" {v}"
                                  for i, (_, v) in enumerate(knobs))
            raise SettingError(knobs[0][0], "{mismatch}; train its cells resized to the data "
                               "with " + with_knobs + " (space {fit})", value=knobs[0][1],
                               others=tuple(k for k, _ in knobs[1:]), mismatch=msg, fit=fit)
        msg += f" (space {fit})"
    raise TrainError(msg)


def train_architecture(arch, dataset: Dataset, *, out: str | os.PathLike, epochs: int,
                       resume: bool = False, progress: bool = True,
                       distributed: Distributed | None = None, **recipe):
    """Builds ``arch``, trains it with :func:`train_model`, measures test accuracy and writes
    the model checkpoint ``out`` (see :mod:`mobile_nas.train.checkpoint`).

    The per-epoch training state goes to ``<out>.state`` and is removed once ``out`` is
    written; ``resume=True`` continues from it. Under torchrun (``distributed``) rank 0
    writes both, the others wait until ``out`` is written. Returns the
    :class:`~mobile_nas.train.checkpoint.ModelCheckpoint` (on every rank).
    """
    out = Path(out)

    def check_folder() -> None:
        if not out.parent.is_dir():
            raise CheckpointError(f"cannot write {str(out)!r}: folder {str(out.parent)!r} "
                                  f"does not exist")

    on_main(distributed, check_folder)
    state_path = out.with_name(out.name + ".state")
    torch.manual_seed(recipe.get("seed", 0))
    model = build_model(arch)
    result = train_model(model, dataset, epochs=epochs, progress=progress,
                         checkpoint_path=state_path, resume=resume, distributed=distributed,
                         **recipe)
    test_acc = evaluate_accuracy(model, dataset.test, dataset.mean, dataset.std,
                                 distributed=distributed, workers=recipe.get("workers"))
    metrics = {**result.to_json(), "test_accuracy": test_acc, "test_images": len(dataset.test)}
    ckpt = make_checkpoint(model, arch, dataset, metrics=metrics,
                           recipe={"epochs": epochs, **{k: v for k, v in recipe.items()
                                                        if v is not None}})
    if distributed is None or distributed.is_main:
        save_checkpoint(ckpt, out)
        state_path.unlink(missing_ok=True)
    barrier(distributed)
    return ckpt
