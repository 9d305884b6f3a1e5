"""The sentinel: a fixed small network that every latency table build times beside its layers
(:mod:`.profiler`), whose timing is also the anchor of relative tables (:mod:`.measure`)."""

from __future__ import annotations

import torch
from torch import nn

from mobile_nas.cost.latency.export import export_module_onnx
from mobile_nas.cost.latency.settings import DEFAULTS

#: What the sentinel is; recorded in the metadata.
SENTINEL_MODEL = ("Conv3x3(16->32)+ReLU+Conv3x3(32->16) on 1x16x32x32, float32, weights of "
                  "torch.manual_seed(0)")


def sentinel_onnx(opset: int = DEFAULTS.opset) -> bytes:
    """The sentinel model (:data:`SENTINEL_MODEL`) as ONNX bytes."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                           nn.Conv2d(32, 16, 3, padding=1))
    return export_module_onnx(module, (1, 16, 32, 32), opset=opset)
