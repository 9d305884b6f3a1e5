"""Where torch computes: device resolution and mixed precision for training and scoring.

``--device auto`` picks CUDA when available, else Apple's MPS, else the CPU; ``cuda:N`` names
one GPU (search workers on a multi-GPU machine each take their own). Latency is never measured
here: it is onnxruntime's job on the CPU or the target device.

Mixed precision (:func:`autocast`) is on by default on CUDA: bfloat16 where the GPU supports
it, float16 with a gradient scaler otherwise. On the CPU it is off unless asked for
(``--amp``), and then uses bfloat16.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from mobile_nas.errors import SettingError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


class DeviceError(SettingError):
    """A ``device`` setting that is malformed or not present on this machine (the fields of
    :class:`~mobile_nas.errors.SettingError`, ``what`` ``"device"``)."""


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device for ``spec`` (``auto|cpu|cuda|cuda:N|mps``); raises
    :class:`DeviceError` naming what this machine has when it is absent."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    match = re.fullmatch(r"(cpu|mps|cuda)(?::(\d+))?", text)
    if match is None or (match.group(1) != "cuda" and match.group(2) is not None):
        raise DeviceError("device", "device {value!r} is not one of {allowed}", value=spec,
                          allowed=DEVICE_CHOICES)
    kind, index = match.group(1), match.group(2)
    if kind == "cpu":
        return torch.device("cpu")
    if kind == "mps":
        if not _mps_available():
            raise DeviceError("device", "device 'mps' is not available here ({here}; use "
                               "{what} auto)", value=spec, here=_what_is_here())
        return torch.device("mps")
    if not torch.cuda.is_available():
        raise DeviceError("device", "device {value!r}: CUDA is not available here ({here}; "
                           "use {what} auto)", value=spec, here=_what_is_here())
    n = torch.cuda.device_count()
    i = torch.cuda.current_device() if index is None else int(index)
    if i >= n:
        raise DeviceError("device", "device {value!r}: this machine has {n} CUDA device(s) "
                          "(cuda:0..cuda:{last})", value=spec, n=n, last=n - 1)
    return torch.device("cuda", i)


def describe_device(device: torch.device) -> str:
    """A line for logs and metadata, e.g. ``cpu (2 threads)`` or ``cuda:0 (NVIDIA H200)``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


@dataclass(frozen=True)
class Precision:
    """Mixed-precision settings of a run: ``dtype`` None means full float32."""

    dtype: torch.dtype | None
    scale_gradients: bool  # float16 needs a gradient scaler; bfloat16 does not

    @property
    def name(self) -> str:
        return "fp32" if self.dtype is None else str(self.dtype).removeprefix("torch.")


def choose_precision(device: torch.device, amp: bool | None = None) -> Precision:
    """``amp`` None: on for CUDA, off elsewhere. On: bfloat16 where supported (CPU, recent
    GPUs), else float16 with gradient scaling."""
    if amp is None:
        amp = device.type == "cuda"
    if not amp:
        return Precision(None, False)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return Precision(torch.float16, True)
    if device.type == "mps":
        return Precision(torch.float16, False)
    return Precision(torch.bfloat16, False)


@contextlib.contextmanager
def autocast(device: torch.device, precision: Precision) -> Iterator[None]:
    """``torch.autocast`` for ``precision`` on ``device`` (nothing for float32)."""
    if precision.dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=precision.dtype):
        yield


def grad_scaler(device: torch.device, precision: Precision) -> torch.amp.GradScaler:
    """A gradient scaler that is a no-op unless float16 needs it."""
    return torch.amp.GradScaler(device.type, enabled=precision.scale_gradients)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def _what_is_here() -> str:
    kinds = ["cpu"] + (["mps"] if _mps_available() else [])
    if torch.cuda.is_available():
        kinds.insert(0, f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return "this machine has: " + ", ".join(kinds)
