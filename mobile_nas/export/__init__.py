"""Deployables: ONNX export with normalization inside the graph, verification (checker,
onnxruntime parity and accuracy), INT8 static quantization, and metadata."""

from mobile_nas.export.errors import ExportError
from mobile_nas.export.onnx_export import DeployModel, export_onnx

__all__ = ["DeployModel", "ExportError", "export_onnx"]
