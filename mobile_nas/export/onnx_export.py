"""ONNX export of a trained checkpoint: float pixels in [0, 1] in, logits out.

The dataset normalization is folded into the graph as its first two nodes, so a deployment
feeds raw pixels scaled to [0, 1] (N×C×H×W, float32); the batch axis is dynamic (server
profile) or 1 with every shape fixed (mobile profile, :mod:`mobile_nas.export.mobile`).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from mobile_nas.atomic import atomic_write_bytes
from mobile_nas.export.errors import ExportError
from mobile_nas.export.graph import INPUT_NAME, OUTPUT_NAME, export_onnx_bytes
from mobile_nas.export.mobile import export_mobile_onnx_bytes
from mobile_nas.torch_onnx import DEFAULT_OPSET

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "DeployModel", "check_output_path", "export_onnx",
           "export_onnx_bytes", "read_metadata", "set_metadata"]


class DeployModel(nn.Module):
    """``(x - mean) / std`` followed by the network."""

    mean: torch.Tensor  # buffers
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def export_onnx(ckpt, out: str | os.PathLike, *, opset: int = DEFAULT_OPSET,
                metadata: dict[str, str] | None = None, mobile: bool = False):
    """Exports checkpoint ``ckpt`` to ``out`` (atomic write) and returns the ``onnx`` model.

    ``metadata`` goes into ``metadata_props``. ``mobile``: the mobile profile (batch 1,
    fixed shapes, operators NNAPI and CoreML take; :mod:`mobile_nas.export.mobile`).
    Raises :class:`ExportError` if the folder of ``out`` is missing.
    """
    import onnx

    out = Path(out)
    check_output_path(out)
    net = ckpt.build_model()
    deploy = DeployModel(net, ckpt.mean, ckpt.std)
    shape = tuple(ckpt.dataset.get("input_shape") or ckpt.architecture().search_space.input_shape)
    if mobile:
        data = export_mobile_onnx_bytes(deploy, shape, opset=opset)
    else:
        data = export_onnx_bytes(deploy, shape, opset=opset)
    model = onnx.load_from_string(data)
    model.doc_string = f"mobile-nas {ckpt.space} {ckpt.arch}"
    set_metadata(model, metadata or {})
    atomic_write_bytes(out, model.SerializeToString())
    return model


def set_metadata(model, metadata: dict[str, str]) -> None:
    """Replaces ``metadata_props`` entries of the keys given (values stored as strings)."""
    import onnx

    keep = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in metadata.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def check_output_path(out: str | os.PathLike) -> None:
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"cannot write {str(out)!r}: folder {str(out.parent)!r} does not exist")
    if out.is_dir():
        raise ExportError(f"cannot write {str(out)!r}: it is a folder")
