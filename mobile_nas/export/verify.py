"""Verification of exported files: ONNX checker, onnxruntime parity with PyTorch, accuracy."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from mobile_nas.cost.latency.measure import load_session
from mobile_nas.export.errors import ExportError
from mobile_nas.export.onnx_export import INPUT_NAME
from mobile_nas.onnx_quantize import pixels  # noqa: F401  (the input every check feeds)


@dataclass(frozen=True)
class Parity:
    """onnxruntime vs PyTorch logits on ``images`` real images."""

    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float  # fraction of images whose argmax agrees
    images: int


def check_onnx(path: str | os.PathLike) -> None:
    """``onnx.checker`` with the full check (strict shape inference); raises ExportError."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise ExportError(f"{path} fails the ONNX checker: {first}") from None


def ort_logits(session, images_uint8: torch.Tensor, batch_size: int = 500) -> np.ndarray:
    """Logits of ``session`` on uint8 images, in batches (of the model's own batch size when
    it is fixed, as in the mobile profile)."""
    fixed = session.get_inputs()[0].shape[0]
    if isinstance(fixed, int) and fixed > 0:
        batch_size = fixed
    outs = [session.run(None, {INPUT_NAME: pixels(images_uint8[i:i + batch_size])})[0]
            for i in range(0, len(images_uint8), batch_size)]
    return np.concatenate(outs)


def parity(deploy_model: torch.nn.Module, path: str | os.PathLike,
           images_uint8: torch.Tensor) -> Parity:
    """Compares the ONNX file with ``deploy_model`` (PyTorch, same [0, 1] input)."""
    if len(images_uint8) == 0:
        raise ExportError("parity needs at least one image")
    deploy_model.eval()
    with torch.inference_mode():
        ref = deploy_model(torch.from_numpy(pixels(images_uint8))).numpy()
    got = ort_logits(load_session(path), images_uint8)
    diff = np.abs(ref - got)
    return Parity(float(diff.max()), float(diff.mean()),
                  float((ref.argmax(1) == got.argmax(1)).mean()), len(images_uint8))


def onnx_accuracy(path_or_session, imageset, *, threads: int = 1) -> float:
    """Top-1 accuracy (fraction) of an ONNX file on an :class:`ImageSet` (uint8 images)."""
    session = (load_session(path_or_session, threads=threads)
               if isinstance(path_or_session, (str, os.PathLike)) else path_or_session)
    logits = ort_logits(session, imageset.images)
    return float((logits.argmax(1) == imageset.labels.numpy()).mean())
