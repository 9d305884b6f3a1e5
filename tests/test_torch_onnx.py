"""The one low-level exporter (:mod:`mobile_nas.torch_onnx`) and its layering."""

import ast
from pathlib import Path

import onnx
import torch
from torch import nn

import mobile_nas
from mobile_nas.cost.latency import export as lut_export
from mobile_nas.export import onnx_export
from mobile_nas.torch_onnx import DEFAULT_OPSET, torch_to_onnx

PACKAGE = Path(mobile_nas.__file__).parent


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


def test_both_exporters_share_one_opset():
    assert lut_export.DEFAULT_OPSET is DEFAULT_OPSET
    assert onnx_export.DEFAULT_OPSET is DEFAULT_OPSET


def test_wrappers_are_the_one_exporter():
    net = _net()
    assert lut_export.export_module_onnx(net, (1, 1, 8, 8)) == torch_to_onnx(
        net, torch.zeros(1, 1, 8, 8))
    torch.manual_seed(1)
    wrapped = onnx_export.export_onnx_bytes(net, (1, 8, 8), dynamic_batch=False)
    torch.manual_seed(1)
    direct = torch_to_onnx(net, torch.rand(1, 1, 8, 8), input_name=onnx_export.INPUT_NAME,
                           output_name=onnx_export.OUTPUT_NAME)
    assert wrapped == direct


def test_names_opset_and_batch_axis():
    model = onnx.load_from_string(torch_to_onnx(_net(), torch.zeros(1, 1, 8, 8), opset=13,
                                                input_name="x", output_name="y",
                                                dynamic_batch=True))
    assert model.opset_import[0].version == 13
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("x", "y")
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    fixed = onnx.load_from_string(torch_to_onnx(_net(), torch.zeros(2, 1, 8, 8)))
    assert fixed.opset_import[0].version == DEFAULT_OPSET
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_layering_cost_never_imports_export():
    """export imports cost (timing, tables); cost and the exporter must not import export."""
    files = [*sorted((PACKAGE / "cost").rglob("*.py")), PACKAGE / "torch_onnx.py"]
    bad = {f"{f.relative_to(PACKAGE)}: {m}" for f in files for m in _imports(f)
           if m == "mobile_nas.export" or m.startswith("mobile_nas.export.")}
    assert not bad
    assert not any(m.startswith("mobile_nas") for m in _imports(PACKAGE / "torch_onnx.py"))
