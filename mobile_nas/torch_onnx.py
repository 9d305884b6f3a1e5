"""PyTorch module → ONNX bytes: the one low-level exporter of mobile-nas, and its opset.

Latency tables (:mod:`mobile_nas.cost.latency.export`: layers and whole networks) and
deployables (:mod:`mobile_nas.export.onnx_export`: checkpoints) both export through
:func:`torch_to_onnx`, so every model mobile-nas times or ships is written the same way:
TorchScript exporter (``dynamo=False``), eval mode, no gradients, constant folding.

onnxruntime sessions and the timing loop live in :mod:`mobile_nas.cost.latency.runner`,
which has to stay one standalone file (``lut bundle`` copies it to devices as is).
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

#: The ONNX opset of every export unless a caller asks for another.
DEFAULT_OPSET = 17


def torch_to_onnx(module: nn.Module, example: torch.Tensor, *, opset: int = DEFAULT_OPSET,
                  input_name: str = "input", output_name: str = "output",
                  dynamic_batch: bool = False) -> bytes:
    """``module`` (switched to eval mode) traced on ``example`` as serialized ONNX.

    One input and one output, named ``input_name`` and ``output_name``; ``dynamic_batch``
    makes axis 0 of both symbolic (``"batch"``), otherwise every shape is that of
    ``example``.
    """
    module = module.eval()
    buf = io.BytesIO()
    axes = {input_name: {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    with torch.no_grad(), warnings.catch_warnings():
        # torch warns it cannot constant-fold some Slice nodes of cell networks (factorized
        # reduce); the graph is still exact (export checks parity with PyTorch)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        # the mobile rewrites read fixed shapes as Python ints, on purpose
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # dynamo=False (TorchScript) writes to a file object; torch annotates paths only
        torch.onnx.export(module, (example,), buf,  # type: ignore[arg-type]
                          input_names=[input_name], output_names=[output_name],
                          opset_version=opset, dynamic_axes=axes,
                          do_constant_folding=True, dynamo=False)
    return buf.getvalue()
