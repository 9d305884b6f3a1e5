"""Every layer type of every shipped space, exported with the mobile profile, is taken whole
by NNAPI and CoreML (onnxruntime's own usability analysis) and matches PyTorch.

A layer type is one (op, expansion, activation, SE, stride, residual) of the space's
``enumerate_layers()``, exported at its smallest size; the cell spaces add one whole network
each, for the wiring (sums, concatenations, the zero node of NB201). An operator that cannot
be mapped would have to be listed in ``NOT_MOBILE_EP_FRIENDLY`` (and its choice marked in the
space); today there is none.
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from mobile_nas.export.mobile import export_mobile_onnx_bytes, mobile_graph_model
from mobile_nas.export.onnx_export import INPUT_NAME, export_onnx_bytes
from mobile_nas.export.usability import PROVIDERS, check_mobile_usability
from mobile_nas.models import build_layer, build_model
from mobile_nas.models.blocks import init_weights
from mobile_nas.space import get_space, list_spaces

#: (space, layer op) pairs whose operator no mobile provider takes; none so far.
NOT_MOBILE_EP_FRIENDLY: frozenset[tuple[str, str]] = frozenset()

SHIPPED = [name for name in list_spaces() if "@" not in name]


def _layer_types(space_name: str) -> list:
    """One layer key per layer type of the space: the smallest of each type."""
    found: dict[tuple, object] = {}
    for k in get_space(space_name).enumerate_layers():
        t = (k.op, k.expansion, k.act, bool(k.se), k.stride, k.residual)
        size = k.cin * k.cout * k.h * k.w * k.kernel
        if t not in found or size < found[t][0]:
            found[t] = (size, k)
    return [k for _, k in sorted(found.values(), key=lambda sk: sk[1].id)]


def _randomize_batchnorm(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics, so a BN rewrite that is off shows in the parity check."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 2 - 1)
            m.running_var.copy_(torch.rand(n, generator=g) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 2 - 1)


def _export_and_check(module: nn.Module, input_shape, tmp_path, name: str):
    """Mobile export of ``module``: (usability, max |onnxruntime - PyTorch|, max |PyTorch|)."""
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(export_mobile_onnx_bytes(module, tuple(input_shape)))
    model = onnx.load(str(path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, *input_shape]  # batch 1, every dimension fixed
    x = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(1)) * 2
    with torch.inference_mode():
        ref = module.eval()(x).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {INPUT_NAME: x.numpy()})[0]
    return check_mobile_usability(path), float(np.abs(ref - got).max()), float(
        np.abs(ref).max())


def test_every_shipped_space_is_covered():
    assert {"fmnist28", "mobile224", "nasnet", "nb201"} <= set(SHIPPED)
    ops = {k.op for s in SHIPPED for k in _layer_types(s)}
    # the mobile blocks and every cell operation of the shipped spaces
    assert {"stem", "ds", "mb", "head", "classifier", "cell_stem", "relu_conv_bn", "sep_conv",
            "dil2_conv", "avg_pool", "max_pool", "conv_1x7_7x1", "factorized_reduce",
            "nb201_resblock", "nb201_head", "cell_classifier"} <= ops
    acts = {k.act for k in _layer_types("mobile224")}
    assert {"relu", "relu6", "hswish"} <= acts
    assert {(k.expansion, bool(k.se)) for k in _layer_types("fmnist28") if k.op == "mb"} == {
        (3, False), (3, True), (6, False), (6, True)}


@pytest.mark.parametrize("space", SHIPPED)
def test_every_layer_type_runs_whole_on_nnapi_and_coreml(space, tmp_path):
    failures = []
    for key in _layer_types(space):
        torch.manual_seed(0)
        layer = build_layer(key)
        init_weights(layer)
        _randomize_batchnorm(layer)
        usability, diff, scale = _export_and_check(layer, (key.cin, key.h, key.w), tmp_path,
                                                   "layer")
        assert diff <= 1e-5 * max(1.0, scale), f"{key.id}: onnxruntime vs PyTorch {diff:.2e}"
        if (space, key.op) in NOT_MOBILE_EP_FRIENDLY:
            continue
        for pid in PROVIDERS:
            c = usability.providers[pid]
            if not c.whole_graph:
                failures.append(f"{key.id}: {c.summary()}")
    assert not failures, "\n".join(failures)


CELL_NETWORKS = {
    # all eight operations in both cells (stride 2 and factorized reductions in 'reduce')
    "nasnet@n1-f4-r16": "normal:{b}|reduce:{b}".format(
        b="sep_conv_3x3~0+sep_conv_5x5~1,sep_conv_7x7~0+dil_conv_3x3~1,avg_pool_3x3~0"
          "+max_pool_3x3~1,identity~0+conv_1x7_7x1~1,sep_conv_3x3~2+identity~3"),
    # every operation, and node 2 fed by 'none' only (a zero tensor)
    "nb201@n1-f4-r16": "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1"
                       "|avg_pool_3x3~2|",
}


@pytest.mark.parametrize("space", sorted(CELL_NETWORKS))
def test_cell_networks_run_whole_on_nnapi_and_coreml(space, tmp_path):
    arch = get_space(space).decode(CELL_NETWORKS[space])
    torch.manual_seed(0)
    net = build_model(arch)
    _randomize_batchnorm(net)
    usability, diff, scale = _export_and_check(net, arch.search_space.input_shape, tmp_path,
                                               "net")
    assert diff <= 1e-5 * max(1.0, scale)
    for c in usability.providers.values():
        assert c.whole_graph and c.nodes > 20, c.summary()


def test_the_analysis_sees_what_the_rewrites_fix(tmp_path):
    """Control: the server graph of the same layers is split or refused by the analysis."""
    fm = get_space("fmnist28")
    se_hswish = next(k for k in _layer_types("fmnist28") if k.op == "mb" and k.se
                     and k.act == "hswish")
    classifier = next(k for k in _layer_types("fmnist28") if k.op == "classifier")
    reduce = next(k for k in _layer_types("nasnet") if k.op == "factorized_reduce")
    head = next(k for k in _layer_types("nb201") if k.op == "nb201_head")
    expected = {se_hswish: ("nnapi", "HardSigmoid"), classifier: ("coreml_mlprogram", "Flatten"),
                reduce: ("coreml_mlprogram", "Pad"),
                head: ("coreml_mlprogram", "BatchNormalization")}
    for key, (pid, op) in expected.items():
        layer = build_layer(key).eval()
        path = tmp_path / "server.onnx"
        path.write_bytes(export_onnx_bytes(layer, (key.cin, key.h, key.w), dynamic_batch=False))
        c = check_mobile_usability(path).providers[pid]
        assert not c.whole_graph and f"ai.onnx:{op}" in c.unsupported_ops, (key.id, c)
    # and a dynamic batch is refused outright
    path.write_bytes(export_onnx_bytes(build_model(fm.smallest_arch()).eval(), fm.input_shape))
    c = check_mobile_usability(path).providers["nnapi"]
    assert c.partitions == 0 and c.dynamic_shape_nodes == c.nodes


def test_rewrite_leaves_the_training_network_alone():
    arch = get_space("fmnist28").decode(
        "ds_k3_n1_c16_relu|mb3_k3_n1_c24_relu|mb3_k3_n1_c40_hswish|mb3_k3_n1_c64_hswish_se")
    net = build_model(arch).eval()
    before = [type(m) for m in net.modules()]
    mobile = mobile_graph_model(net)
    assert [type(m) for m in net.modules()] == before
    kinds = {type(m) for m in mobile.modules()}
    assert not kinds & {nn.Hardswish, nn.Hardsigmoid, nn.Flatten}
    # BatchNorms right after a conv stay (the exporter folds them): no Mul/Add per conv
    assert sum(isinstance(m, nn.BatchNorm2d) for m in mobile.modules()) == sum(
        isinstance(m, nn.BatchNorm2d) for m in net.modules())
    x = torch.rand(3, 1, 28, 28)
    with torch.inference_mode():
        assert torch.equal(net(x), mobile(x))  # same kernels, same order: bit-identical
    buf = io.BytesIO(export_mobile_onnx_bytes(net, (1, 28, 28)))
    ops = {n.op_type for n in onnx.load(buf).graph.node}
    assert "BatchNormalization" not in ops and "HardSigmoid" not in ops
    assert {"Clip", "Reshape"} <= ops
