"""Training on several processes under ``torchrun``: the process group and its collectives.

``torchrun --nproc_per_node N -m mobile_nas train ...`` starts N copies of the command with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`distributed` reads them, joins the
process group and leaves it. Without them (a plain ``mobile-nas train``) it joins nothing
and everything runs in one process exactly as before.

The backend follows the resolved device (:func:`mobile_nas.device.resolve_device`): gloo on
CPUs; on CUDA, process ``LOCAL_RANK`` takes GPU ``LOCAL_RANK`` (``--device cuda``/``auto``)
and NCCL when every process of a node has a GPU of its own, gloo when processes share one
(more processes than GPUs, or an explicit ``cuda:N``: NCCL refuses two ranks on one GPU).

Rules the trainers follow (stated once here):

* ``batch_size`` is the global batch: each of N processes takes ``batch_size / N`` images
  of every step's batch, so a run on N processes takes the same optimizer steps on the same
  images, at the same learning rate, as one process (no linear scaling: the global batch
  does not change with N; to train a larger global batch raise ``--batch-size`` and, by
  Goyal et al.'s linear scaling rule, ``--lr`` with it). Batch norm normalises each
  process's part of the batch (no SyncBatchNorm), the one difference from one process.
* Rank 0 alone reads and writes checkpoints (atomically) and broadcasts what it read, so
  a restarted job (after the kill of any rank) resumes from rank 0's last checkpoint, and
  nodes need no shared folder to resume.
* Metrics (losses, accuracies) are summed over the processes before they are reported.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from mobile_nas.device import resolve_device
from mobile_nas.errors import MobileNasError, SettingError

T = TypeVar("T")
#: the variables torchrun sets for each process it starts
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


class DistributedError(MobileNasError):
    """A multi-process setting that cannot work (device, batch size, launch variables)."""


class DistributedDeviceError(SettingError, DistributedError):
    """A ``device`` that training on several processes cannot use (the fields of
    :class:`~mobile_nas.errors.SettingError`, caught as a :class:`DistributedError`)."""


@dataclass(frozen=True)
class Distributed:
    """This process's place in a training job; ``world_size`` 1 and ``backend`` ``"none"``
    for a single process (no process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        """True when there are other processes to talk to."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that reads and writes files and prints."""
        return self.rank == 0

    def per_process_batch(self, batch_size: int) -> int:
        """This process's share of a global ``batch_size``; raises when it does not split."""
        if batch_size % self.world_size:
            raise DistributedError(f"batch size {batch_size} does not split over "
                                   f"{self.world_size} processes; use a multiple of "
                                   f"{self.world_size} (it is the global batch)")
        return batch_size // self.world_size

    def to_json(self, batch_size: int | None = None) -> dict[str, Any]:
        """What a log, ``--json`` or a checkpoint records about the job."""
        out: dict[str, Any] = {"world_size": self.world_size, "backend": self.backend}
        if batch_size is not None:
            out["global_batch"] = batch_size
            out["per_process_batch"] = batch_size // self.world_size
        return out


SINGLE = Distributed()


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher setting its variables) started this process."""
    return all(k in os.environ for k in TORCHRUN_ENV)


def _env_int(name: str) -> int:
    try:
        return int(os.environ[name])
    except ValueError:
        raise DistributedError(f"{name}={os.environ[name]!r} is not an integer (set by "
                               f"torchrun)") from None


def choose_backend(device: torch.device, *, local_world_size: int, shared_gpu: bool) -> str:
    """gloo on CPUs; NCCL when each local process has a GPU of its own, else gloo."""
    if device.type == "cpu":
        return "gloo"
    if device.type != "cuda":
        raise DistributedDeviceError("device", "training on several processes runs on CPUs "
                                     "(gloo) or CUDA GPUs (NCCL), not on {value!r}; use {what} "
                                     "cpu or cuda", value=device.type)
    if shared_gpu or local_world_size > torch.cuda.device_count():
        return "gloo"
    return "nccl"


def rank_device(spec: str | torch.device, local_rank: int) -> tuple[torch.device, bool]:
    """The device of local process ``local_rank`` for ``--device spec`` and whether it is
    one GPU named for every process (``cuda:N``)."""
    dev = resolve_device(spec)
    if dev.type != "cuda":
        return dev, False
    explicit = ":" in str(spec)
    if explicit:
        return dev, True
    return torch.device("cuda", local_rank % torch.cuda.device_count()), False


@contextlib.contextmanager
def distributed(device: str | torch.device = "auto") -> Iterator[Distributed]:
    """This process's :class:`Distributed` for ``device``: joins the process group when
    torchrun started it with ``WORLD_SIZE`` > 1 (left on exit), else a single process on
    ``resolve_device(device)`` with no process group."""
    if not launched_by_torchrun() or _env_int("WORLD_SIZE") <= 1:
        yield Distributed(device=resolve_device(device))
        return
    rank, world, local = (_env_int(k) for k in TORCHRUN_ENV)
    dev, shared = rank_device(device, local)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    backend = choose_backend(dev, local_world_size=local_world, shared_gpu=shared)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if dist.is_initialized():  # a library user who set the group up already
        yield Distributed(rank, world, local, dist.get_backend(), dev)
        return
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        yield Distributed(rank, world, local, backend, dev)
    finally:
        dist.destroy_process_group()


# -- collectives (each a no-op for a single process) -----------------------------------------
def on_main(ctx: Distributed | None, fn: Callable[[], T]) -> T:
    """``fn()`` run on rank 0 and its result (or the :class:`MobileNasError` it raised)
    broadcast: every rank returns the same value or raises the same error."""
    if ctx is None or not ctx.enabled:
        return fn()
    box: list[Any] = [None]
    if ctx.is_main:
        try:
            box[0] = ("ok", fn())
        except MobileNasError as exc:
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0, device=_comm_device(ctx))
    status, value = box[0]
    if status == "error":
        raise value
    return value


def barrier(ctx: Distributed | None) -> None:
    """Waits for every rank (e.g. until rank 0 has written a file)."""
    if ctx is not None and ctx.enabled:
        dist.barrier()


def all_reduce_sum(ctx: Distributed | None, values: Sequence[float]) -> list[float]:
    """``values`` summed over the ranks (float64)."""
    if ctx is None or not ctx.enabled:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64,
                     device=_comm_device(ctx))
    dist.all_reduce(t)
    return t.cpu().tolist()


def broadcast_state(ctx: Distributed | None, module: torch.nn.Module,
                    buffers_only: bool = False) -> None:
    """Copies rank 0's parameters (unless ``buffers_only``) and buffers (batch-norm
    statistics) to every rank, in place."""
    if ctx is None or not ctx.enabled:
        return
    tensors = list(module.buffers()) if buffers_only else \
        [*module.parameters(), *module.buffers()]
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)


def average_gradients(ctx: Distributed | None, params: Sequence[torch.nn.Parameter]) -> None:
    """Averages the gradients of ``params`` over the ranks with one all-reduce. Every rank
    must hold gradients for the same parameters (the supernet trains the same path on all
    ranks in a step); those without one are skipped."""
    if ctx is None or not ctx.enabled:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = _flatten_dense_tensors(grads)
    dist.all_reduce(flat)
    flat /= ctx.world_size
    for g, synced in zip(grads, _unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(synced)


def shard(ctx: Distributed | None, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """This rank's part of a global batch: DistributedSampler's rule (the batch padded with
    its first items to a multiple of the world size, rank r takes items r, r + N, ...)."""
    if ctx is None or not ctx.enabled:
        return tensors
    n = len(tensors[0])
    idx = torch.arange(n, device=tensors[0].device)
    pad = (-n) % ctx.world_size
    if pad:
        idx = torch.cat([idx, idx[:pad].repeat(pad // max(n, 1) + 1)[:pad]])
    mine = idx[ctx.rank::ctx.world_size]
    return tuple(t[mine] for t in tensors)


def _comm_device(ctx: Distributed) -> torch.device:
    """Where small collective tensors live: the GPU for NCCL, the CPU for gloo."""
    return ctx.device if ctx.backend == "nccl" else torch.device("cpu")
