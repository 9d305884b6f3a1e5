"""The NASNet cell space: codec, cell structure, layer keys and scaled variants."""

import numpy as np
import pytest

from mobile_nas.errors import ArchError, SpaceError
from mobile_nas.space import get_space, load_arch
from mobile_nas.space.nasnet import OPS, Block, unused_states
from mobile_nas.space.scaled import scaled_space, transfer_arch

NASNET_A_LIKE = (
    "normal:sep_conv_3x3~1+identity~1,sep_conv_3x3~1+sep_conv_5x5~0,avg_pool_3x3~1+identity~0,"
    "avg_pool_3x3~0+avg_pool_3x3~0,sep_conv_5x5~1+sep_conv_3x3~1"
    "|reduce:sep_conv_7x7~0+sep_conv_5x5~1,max_pool_3x3~1+sep_conv_7x7~0,"
    "avg_pool_3x3~1+sep_conv_5x5~0,identity~2+avg_pool_3x3~3,sep_conv_3x3~2+max_pool_3x3~1"
)


def test_decisions_and_size():
    space = get_space("nasnet")
    assert len(space.decisions) == 2 * 5 * 4
    per_cell = 1
    for b in range(5):
        per_cell *= ((b + 2) * len(OPS)) ** 2
    assert space.size() == per_cell ** 2


def test_sampled_architectures_round_trip():
    space = get_space("nasnet")
    rng = np.random.default_rng(0)
    for _ in range(200):
        arch = space.sample(rng)
        assert space.decode(arch.to_string()) == arch


def test_genotype_and_unused_state_concatenation():
    space = get_space("nasnet")
    arch = load_arch(NASNET_A_LIKE, "nasnet")
    g = space.genotype(arch)
    assert g["normal"][0] == Block(1, "sep_conv_3x3", 1, "identity")
    # normal blocks take only states 0 and 1: all five block outputs are concatenated
    assert unused_states(g["normal"]) == (2, 3, 4, 5, 6)
    # reduce block 3 uses states 2 and 3, block 4 uses state 2
    assert unused_states(g["reduce"]) == (4, 5, 6)
    plan = space.plan(arch)
    assert [c.reduction for c in plan.cells] == [False, True, False, True, False]
    assert [c.channels for c in plan.cells] == [8, 16, 16, 32, 32]
    assert [c.out_channels for c in plan.cells] == [40, 48, 80, 96, 160]
    assert [(c.h, c.w) for c in plan.cells] == [(28, 28), (28, 28), (14, 14), (14, 14), (7, 7)]
    assert plan.classifier.cin == 160


@pytest.mark.parametrize("text, needle", [
    ("normal:" + ",".join(["identity~0+identity~1"] * 5), "normal:...|reduce:..."),
    ("reduce:x|normal:y", "expected the normal cell"),
    ("normal:" + ",".join(["identity~0+identity~1"] * 4) + "|reduce:"
     + ",".join(["identity~0+identity~1"] * 5), "needs 5 blocks"),
    ("normal:" + ",".join(["identity~0+identity~1"] * 4) + ",conv~0+identity~1|reduce:"
     + ",".join(["identity~0+identity~1"] * 5), "'conv'"),
    ("normal:identity~2+identity~1," + ",".join(["identity~0+identity~1"] * 4) + "|reduce:"
     + ",".join(["identity~0+identity~1"] * 5), "input 2"),
    ("normal:identity~0," + ",".join(["identity~0+identity~1"] * 4) + "|reduce:"
     + ",".join(["identity~0+identity~1"] * 5), "malformed 'identity~0'"),
])
def test_bad_strings_name_the_problem(text, needle):
    with pytest.raises(ArchError, match=needle.replace("|", r"\|").replace(".", r"\.")):
        get_space("nasnet").decode(text)


@pytest.mark.parametrize("name", ["nasnet", "nasnet@n2-f16", "nasnet@n4-f32-3x224x224-k1000"])
def test_every_layer_of_sampled_archs_is_enumerated(name):
    space = get_space(name)
    listed = set(space.enumerate_layers())
    rng = np.random.default_rng(1)
    for _ in range(60):
        assert set(space.layers(space.sample(rng))) <= listed
    assert len({k.id for k in listed}) == len(listed)


def test_reduction_cell_strides_and_identity_becomes_factorized_reduce():
    space = get_space("nasnet")
    keys = [k for k in space.layers(load_arch(NASNET_A_LIKE, "nasnet"))]
    strided = [k for k in keys if k.stride == 2]
    assert {k.op for k in strided} >= {"sep_conv", "max_pool", "avg_pool", "factorized_reduce"}
    assert all((k.h, k.w) in ((28, 28), (14, 14)) for k in strided)


def test_scaled_names_are_canonical_and_share_architectures():
    big = get_space("nasnet@f32-n4-r224-c3-k1000")
    assert big.name == "nasnet@n4-f32-3x224x224-k1000"
    assert get_space(big.name) is big
    assert scaled_space("nasnet", cells=4, filters=32, input_size=224, channels=3,
                        num_classes=1000) is big
    arch = transfer_arch(load_arch(NASNET_A_LIKE, "nasnet"), big)
    assert arch.space == big.name and arch.to_string() == NASNET_A_LIKE
    stem = big.plan(arch).stem
    assert [(k.h, k.stride) for k in stem] == [(224, 2), (112, 2), (56, 2), (28, 1)]
    cells = big.plan(arch).cells
    assert [c.h for c in cells if not c.reduction] == [28] * 4 + [14] * 4 + [7] * 4


@pytest.mark.parametrize("name, needle", [
    ("nasnet@n4-q7", "bad token 'q7'"),
    ("nasnet@n0", "positive"),
    ("fmnist28@n2", "no size knobs"),
    ("nothere@n2", "unknown search space 'nothere'"),
])
def test_bad_scaled_names(name, needle):
    with pytest.raises(SpaceError, match=needle):
        get_space(name)


def test_transfer_refuses_other_spaces():
    with pytest.raises(ArchError, match="do not transfer"):
        transfer_arch(get_space("nb201").sample(0), "nasnet")


def test_cli_space_show_and_cost_on_scaled_space(run_cli):
    code, out, _ = run_cli("space", "show", "--space", "nasnet")
    assert code == 0 and "normal.b4.op2" in out
    code, out, err = run_cli("cost", NASNET_A_LIKE, "--space", "nasnet@n1-f4", "--json")
    assert code == 0, err
    assert '"space": "nasnet@n1-f4-1x28x28-k10"' in out
    code, _, err = run_cli("cost", NASNET_A_LIKE, "--space", "nasnet@n2-x")
    assert code == 2 and "bad token 'x'" in err


DEAD_CELLS = ("normal:avg_pool_3x3~0+avg_pool_3x3~0,identity~0+sep_conv_5x5~2,"
              "dil_conv_3x3~3+conv_1x7_7x1~0,sep_conv_3x3~4+identity~2,dil_conv_3x3~4+identity~5"
              "|reduce:sep_conv_3x3~0+sep_conv_7x7~0,sep_conv_3x3~0+max_pool_3x3~0,"
              "sep_conv_7x7~2+max_pool_3x3~3,conv_1x7_7x1~3+sep_conv_5x5~3,"
              "identity~0+sep_conv_3x3~2")


def _onnx_op_counts(arch, tmp_path):
    import collections

    import onnx
    import torch

    from mobile_nas.models import build_model

    path = tmp_path / "m.onnx"
    torch.onnx.export(build_model(arch).eval(), torch.randn(1, *arch.search_space.input_shape),
                      str(path), opset_version=17, dynamo=False)
    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


@pytest.mark.filterwarnings("ignore:Constant folding")
def test_runtime_layers_are_what_the_exported_graph_runs(tmp_path):
    """No cell of DEAD_CELLS uses state 1: the reduction cells (only ever read as state 1)
    are dead, the three normal cells run without their state-1 preprocessing, and each
    normal cell's two poolings of state 0 are one in the graph."""
    space = get_space("nasnet")
    arch = space.decode(DEAD_CELLS)
    runtime, every = space.runtime_layers(arch), space.layers(arch)
    assert sum(k.op == "avg_pool" for k in every) == 6
    assert sum(k.op == "max_pool" for k in every) == 4
    for name in ("avg_pool", "max_pool", "relu_conv_bn", "factorized_reduce"):
        assert _count(runtime, name) < _count(every, name), name
    for seed, checked in enumerate([arch, space.sample(3), space.sample(4)]):
        rt = space.runtime_layers(checked)
        ops = _onnx_op_counts(checked, tmp_path)
        assert ops["AveragePool"] == _count(rt, "avg_pool"), seed
        assert ops["MaxPool"] == _count(rt, "max_pool"), seed
        # convs: 1 per stem/preprocessing/classifier-free key, 2 per factorized reduce and
        # per 1x7-7x1 and dilated, 4 per separable conv
        per = {"cell_stem": 1, "relu_conv_bn": 1, "factorized_reduce": 2, "conv_1x7_7x1": 2,
               "dil2_conv": 2, "sep_conv": 4}
        assert ops["Conv"] == sum(per.get(k.op, 0) for k in rt), seed


def _count(keys, op: str) -> int:
    return sum(k.op == op for k in keys)
