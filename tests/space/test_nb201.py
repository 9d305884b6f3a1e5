"""The NAS-Bench-201 space: NB201's own arch strings, its 15,625 cells and its skeleton."""

import itertools
from pathlib import Path

import pytest

from mobile_nas.cost.flops import count_params
from mobile_nas.cost.model_costs import model_costs
from mobile_nas.errors import ArchError
from mobile_nas.models import build_model
from mobile_nas.space import Architecture, get_space, load_arch
from mobile_nas.space.nb201 import EDGES, OPS

NB201_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nb201"
BEST_C10 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            "nor_conv_1x1~2|")


def _every_arch():
    space = get_space("nb201")
    return [space.from_indices(ix) for ix in itertools.product(range(len(OPS)), repeat=6)]


def test_size_and_decisions():
    space = get_space("nb201")
    assert space.size() == 5 ** 6 == 15_625
    assert [d.name for d in space.decisions] == [f"{t}<-{s}" for t, s in EDGES]


def test_every_cell_round_trips_and_strings_are_distinct():
    space = get_space("nb201")
    archs = _every_arch()
    strings = [a.to_string() for a in archs]
    assert len(set(strings)) == 15_625
    assert all(space.decode(s) == a for s, a in zip(strings, archs, strict=True))


def test_string_format_is_nb201s():
    arch = load_arch(BEST_C10, "nb201")
    assert arch.choices() == {"1<-0": "nor_conv_3x3", "2<-0": "nor_conv_3x3",
                              "2<-1": "nor_conv_3x3", "3<-0": "skip_connect",
                              "3<-1": "nor_conv_3x3", "3<-2": "nor_conv_1x1"}
    assert arch.to_string() == BEST_C10


@pytest.mark.skipif(not (NB201_DATA / "archs.txt").is_file(),
                    reason=f"NAS-Bench-201 data folder {NB201_DATA} is absent")
def test_published_arch_list_decodes_in_order():
    lines = (NB201_DATA / "archs.txt").read_text().split()
    assert len(lines) == 15_625
    space = get_space("nb201")
    assert [space.decode(s).to_string() for s in lines] == lines
    assert lines[6111] == BEST_C10  # NB201's best CIFAR-10 cell (SOURCE.md: index 6111)


@pytest.mark.parametrize("text, needle", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "3 nodes"),
    ("|conv~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|", "'conv'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "none~1"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 edges"),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "repeated"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "'none0'"),
    ("", "empty"),
])
def test_bad_strings_name_the_problem(text, needle):
    with pytest.raises(ArchError, match=needle.replace("|", r"\|")):
        get_space("nb201").decode(text)


def test_skeleton_matches_nb201_published_params_and_flops():
    """NB201 reports 1.531546 MB params / 220.11 MFLOPs for the all-3x3 cell on CIFAR-10 and
    0.073306 MB / 7.78 MFLOPs for the all-none cell."""
    space = get_space("nb201")
    big = model_costs(Architecture("nb201", ("nor_conv_3x3",) * 6))
    empty = model_costs(Architecture("nb201", ("none",) * 6))
    assert big.params == 1_531_546 and round(big.macs / 1e6, 2) == 220.12
    assert empty.params == 73_306 and round(empty.macs / 1e6, 2) == 7.78
    assert len(space.layers(Architecture("nb201", ("none",) * 6))) == 4  # stem, 2 blocks, head


def test_every_layer_of_every_cell_is_enumerated():
    space = get_space("nb201")
    listed = set(space.enumerate_layers())
    used = set()
    for arch in _every_arch()[::97]:
        used.update(space.layers(arch))
    assert used <= listed
    assert {k.op for k in listed} == {"cell_stem", "relu_conv_bn", "avg_pool",
                                      "nb201_resblock", "nb201_head"}


def test_scaled_nb201_keeps_the_cells():
    small = get_space("nb201@n1-f8")
    assert small.name == "nb201@n1-f8-3x32x32-k10"
    assert (small.cells, small.filters) == (1, 8)
    arch = small.decode(BEST_C10)
    assert arch.space == small.name and arch.values == load_arch(BEST_C10, "nb201").values
    assert count_params(build_model(arch)) < count_params(build_model(load_arch(BEST_C10, "nb201")))


def test_runtime_layers_drop_edges_whose_node_never_reaches_the_output():
    """The exported graph keeps only operators feeding the output: node 2 below has no live
    edge out of it, so its two convolutions (in each of the 15 cells) are not run."""
    from mobile_nas.space.nb201 import live_nodes

    space = get_space("nb201")
    arch = space.decode("|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|"
                        "skip_connect~1|none~2|")
    assert live_nodes(arch.values) == {1, 3}
    dropped = [k for k in space.layers(arch) if k not in space.runtime_layers(arch)]
    assert len(space.layers(arch)) - len(space.runtime_layers(arch)) == 2 * 15
    assert {k.op for k in dropped} == {"relu_conv_bn"}
    every = space.decode("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|"
                         "nor_conv_3x3~1|nor_conv_3x3~2|")
    assert space.runtime_layers(every) == space.layers(every)
    assert live_nodes(("none",) * 6) == {3}


def test_runtime_layers_match_the_exported_onnx_graph(tmp_path):
    """Counting Conv nodes in the exported ONNX graph: equal to the runtime layers' convs."""
    import onnx
    import torch

    from mobile_nas.models import build_model

    space = get_space("nb201@n1-f4")
    arch = space.decode("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|"
                        "nor_conv_3x3~1|none~2|")
    path = tmp_path / "m.onnx"
    torch.onnx.export(build_model(arch).eval(), torch.randn(1, 3, 32, 32), str(path),
                      opset_version=17, dynamo=False)
    convs = sum(n.op_type == "Conv" for n in onnx.load(str(path)).graph.node)

    def conv_count(keys) -> int:  # stem 1, resblock 3 (two convs + shortcut), head none
        return sum({"cell_stem": 1, "relu_conv_bn": 1, "nb201_resblock": 3}.get(k.op, 0)
                   for k in keys)

    assert convs == conv_count(space.runtime_layers(arch)) < conv_count(space.layers(arch))
    pooled = space.decode("|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|"
                          "nor_conv_1x1~1|skip_connect~2|")  # three equal pools of node 0
    torch.onnx.export(build_model(pooled).eval(), torch.randn(1, 3, 32, 32), str(path),
                      opset_version=17, dynamo=False)
    pools = sum(n.op_type == "AveragePool" for n in onnx.load(str(path)).graph.node)
    runtime = space.runtime_layers(pooled)
    # one pool of node 0 and one of node 1 per cell; the 2 reduction shortcuts pool too
    assert sum(k.op == "avg_pool" for k in runtime) == 2 * 3
    assert pools == 2 * 3 + sum(k.op == "nb201_resblock" for k in runtime) == 8
