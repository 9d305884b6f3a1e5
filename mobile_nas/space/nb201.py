"""The NAS-Bench-201 space: one searched cell in NB201's fixed skeleton and arch-string format.

A cell has 4 nodes; node ``j`` sums an operation applied to every earlier node ``i < j``,
so 6 edges, each choosing one of ``none``, ``skip_connect``, ``nor_conv_1x1``,
``nor_conv_3x3``, ``avg_pool_3x3``: 5^6 = 15,625 cells, exactly NAS-Bench-201's (Dong & Yang,
ICLR 2020). Decisions are named ``<to><-<from>`` in NB201's string order, and the string form
is NB201's own, e.g. ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|
nor_conv_3x3~1|skip_connect~2|``, so published tables index straight into this space.

Skeleton (NB201's ``TinyNetwork``): 3x3 conv + BN stem with ``C`` channels, then ``N`` cells,
a residual reduction block (``C -> 2C``, stride 2), ``N`` cells, a reduction block
(``2C -> 4C``), ``N`` cells, BN + ReLU, global pooling and a linear classifier. NB201 uses
``N = 5``, ``C = 16`` on 3x32x32 CIFAR inputs; the space carries ``cells`` (N) and
``filters`` (C) so :func:`mobile_nas.space.scaled.scaled_space` can derive other sizes.

Layer keys (what a latency table profiles), shared with the NASNet space where the operator
is the same: ``cell_stem`` (conv + BN), ``relu_conv_bn`` (``nor_conv_kxk``), ``avg_pool``
(3x3, stride 1, padding excluded from the mean), ``nb201_resblock`` and ``nb201_head``
(BN, ReLU, pool, linear). ``skip_connect`` and ``none`` edges run no operator and have no
key; node sums are not keyed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mobile_nas.errors import ArchError
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import ScalableSpace
from mobile_nas.space.decision import Decision
from mobile_nas.space.layers import LayerKey

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: (to, from) node pairs in NB201's string order.
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NODES = 4


@dataclass(frozen=True)
class Edge:
    """One edge of a planned cell: ``key`` is None for operators that run nothing."""

    to: int
    src: int
    op: str
    key: LayerKey | None


@dataclass(frozen=True)
class CellPlan:
    """A cell at one position of the network (``channels`` in and out, input ``h``×``w``)."""

    channels: int
    h: int
    w: int
    edges: tuple[Edge, ...]


@dataclass(frozen=True)
class NetworkPlan:
    """The whole network as an ordered list of stages: the stem key, then for each of the
    three stages its cells, with a reduction block key between stages, then the head key."""

    stem: LayerKey
    stages: tuple[tuple[CellPlan, ...], ...]
    reductions: tuple[LayerKey, ...]
    head: LayerKey


def op_key(op: str, channels: int, h: int, w: int) -> LayerKey | None:
    """The layer key of one NB201 edge operation (None for ``none`` and ``skip_connect``)."""
    if op == "nor_conv_1x1":
        return LayerKey("relu_conv_bn", channels, channels, h, w, kernel=1)
    if op == "nor_conv_3x3":
        return LayerKey("relu_conv_bn", channels, channels, h, w, kernel=3)
    if op == "avg_pool_3x3":
        return LayerKey("avg_pool", channels, channels, h, w, kernel=3)
    if op in ("none", "skip_connect"):
        return None
    raise ArchError(f"unknown NAS-Bench-201 operation {op!r}; known: {', '.join(OPS)}")


def live_nodes(ops: tuple[str, ...]) -> set[int]:
    """Nodes whose value reaches the output node through edges other than ``none``."""
    by_edge = dict(zip(EDGES, ops, strict=True))
    live = {NODES - 1}
    for j in range(NODES - 2, 0, -1):
        if any(by_edge[(to, j)] != "none" and to in live for to in range(j + 1, NODES)):
            live.add(j)
    return live


class NB201Space(ScalableSpace):
    """NAS-Bench-201's cell space (see module docstring); immutable."""

    family = "nb201"
    #: MACs and params of the network equal the sums over layers(arch) (tested), so costs
    #: can be summed from per-layer counts cached by LayerKey.
    costs_are_layer_sums = True

    def __init__(self, *, name: str, input_shape: tuple[int, int, int] = (3, 32, 32),
                 num_classes: int = 10, cells: int = 5, filters: int = 16,
                 description: str = "") -> None:
        if cells < 1 or filters < 1:
            raise ValueError(f"cells and filters must be positive, got {cells}, {filters}")
        decisions = [Decision(f"{to}<-{src}", OPS) for to, src in EDGES]
        super().__init__(name=name, decisions=decisions, input_shape=input_shape,
                         num_classes=num_classes, cells=cells, filters=filters,
                         description=description)

    def scaled(self, *, name: str, cells: int, filters: int,
               input_shape: tuple[int, int, int], num_classes: int) -> NB201Space:
        """The same cell space in a network of other size (see :mod:`.scaled`)."""
        return NB201Space(name=name, input_shape=input_shape, num_classes=num_classes,
                          cells=cells, filters=filters,
                          description=f"{self.name} scaled to N={cells}, C={filters}, "
                                      f"input {'x'.join(map(str, input_shape))}")

    # -- codec ---------------------------------------------------------------------------
    def encode(self, arch: Architecture) -> str:
        self.validate(arch)
        ops = dict(zip(EDGES, arch.values, strict=True))
        nodes = []
        for to in range(1, NODES):
            nodes.append("|" + "|".join(f"{ops[(to, src)]}~{src}" for src in range(to)) + "|")
        return "+".join(nodes)

    def decode(self, text: str) -> Architecture:
        if not isinstance(text, str) or not text.strip():
            raise ArchError("empty architecture string")
        nodes = text.strip().split("+")
        if len(nodes) != NODES - 1:
            raise ArchError(f"a NAS-Bench-201 cell has {NODES - 1} nodes separated by '+', got "
                            f"{len(nodes)} in {text!r}")
        ops: dict[tuple[int, int], str] = {}
        for to, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
                raise ArchError(f"node {to} {node!r} must be '|op~input|...|'")
            tokens = node[1:-1].split("|")
            if len(tokens) != to:
                raise ArchError(f"node {to} {node!r} needs {to} edges (one from each earlier "
                                f"node), got {len(tokens)}")
            for tok in tokens:
                m = re.fullmatch(r"([a-z0-9_]+)~(\d+)", tok)
                if not m:
                    raise ArchError(f"node {to}: malformed edge {tok!r}; expected op~input")
                op, src = m.group(1), int(m.group(2))
                if op not in OPS:
                    raise ArchError(f"node {to}: unknown operation {op!r} in {tok!r}; "
                                    f"allowed: {', '.join(OPS)}")
                if src >= to or (to, src) in ops:
                    raise ArchError(f"node {to}: edge {tok!r} has bad or repeated input {src}")
                ops[(to, src)] = op
        return Architecture(self.name, tuple(ops[e] for e in EDGES))

    # -- structure -----------------------------------------------------------------------
    def plan(self, arch: Architecture) -> NetworkPlan:
        """The network's structure with the layer key of every operator."""
        self.validate(arch)
        cin, h, w = self.input_shape
        c = self.filters
        stem = LayerKey("cell_stem", cin, c, h, w, kernel=3)
        stages, reductions = [], []
        for s in range(3):
            if s:
                reductions.append(LayerKey("nb201_resblock", c, 2 * c, h, w, kernel=3,
                                           stride=2, residual=True))
                c, h, w = 2 * c, -(-h // 2), -(-w // 2)
            edges = tuple(Edge(to, src, op, op_key(op, c, h, w))
                          for (to, src), op in zip(EDGES, arch.values, strict=True))
            stages.append(tuple(CellPlan(c, h, w, edges) for _ in range(self.cells)))
        head = LayerKey("nb201_head", c, self.num_classes, h, w, act="relu")
        return NetworkPlan(stem, tuple(stages), tuple(reductions), head)

    def layers(self, arch: Architecture) -> list[LayerKey]:
        return self._keys(arch, nodes=set(range(1, NODES)), merge_pools=False)

    def runtime_layers(self, arch: Architecture) -> list[LayerKey]:
        """:meth:`layers` as the exported graph runs them: without the edges into nodes that
        never reach the cell's output (e.g. node 2 when every edge out of it is ``none``),
        and with one pooling per pooled node (the exporter merges equal subexpressions)."""
        return self._keys(arch, nodes=live_nodes(arch.values), merge_pools=True)

    def _keys(self, arch: Architecture, *, nodes: set[int], merge_pools: bool
              ) -> list[LayerKey]:
        """Keys in execution order, keeping only cell edges into ``nodes``; ``merge_pools``
        keeps one pooling per pooled node (the exporter merges equal subexpressions)."""
        plan = self.plan(arch)
        keys = [plan.stem]
        for s, cells in enumerate(plan.stages):
            if s:
                keys.append(plan.reductions[s - 1])
            for cell in cells:
                pooled: set[int] = set()
                for e in cell.edges:
                    if e.key is None or e.to not in nodes or (merge_pools and e.op ==
                                                              "avg_pool_3x3" and e.src in pooled):
                        continue
                    if e.op == "avg_pool_3x3":
                        pooled.add(e.src)
                    keys.append(e.key)
        keys.append(plan.head)
        return keys

    def enumerate_layers(self) -> list[LayerKey]:
        every = Architecture(self.name, ("nor_conv_1x1",) * len(EDGES))
        keys = set(self.layers(every))
        keys |= set(self.layers(Architecture(self.name, ("nor_conv_3x3",) * len(EDGES))))
        keys |= set(self.layers(Architecture(self.name, ("avg_pool_3x3",) * len(EDGES))))
        return sorted(keys)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["skeleton"] = {"cells_per_stage": self.cells, "filters": self.filters,
                            "stages": 3, "edges": [f"{t}<-{s}" for t, s in EDGES]}
        return info
