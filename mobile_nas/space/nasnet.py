"""The NASNet cell space: search a normal and a reduction cell, stack them at any size.

A cell (Zoph et al. 2018, "Learning Transferable Architectures") has two input states, the
outputs of the previous two cells (states 0 and 1, each first brought to ``C`` channels by a
1x1 ReLU-conv-BN, or a factorized reduction when the older one has twice the resolution),
and ``B`` blocks. Block ``b`` picks two inputs among states ``0 .. b+1`` and an operation for
each, and adds the two results: its output is state ``b + 2``. Block outputs that no later
block uses are concatenated (like an inception module) as the cell's output, so a cell emits
``C * unused`` channels. In a reduction cell the operations applied to states 0 and 1 have
stride 2 (identity becomes a factorized reduction).

Operations: ``sep_conv_3x3``, ``sep_conv_5x5``, ``sep_conv_7x7`` (ReLU, depthwise, pointwise,
BN, twice), ``dil_conv_3x3`` (dilation 2), ``avg_pool_3x3``, ``max_pool_3x3``, ``identity``,
``conv_1x7_7x1``.

Network: a stem (3x3 conv + BN to ``3F`` channels; inputs larger than 32 pixels first go
through stride-2 3x3 convs until the cells run at 32 pixels or less, as NASNet-mobile's
stem brings 224 down to 28), then ``[N normal cells, 1 reduction cell]`` twice, ``N`` normal
cells, global pooling and a linear classifier. ``C = F`` in the first stack and doubles at
each reduction. ``N`` (``cells``) and ``F`` (``filters``) are the transfer knobs: the space
carries them, and :func:`mobile_nas.space.scaled.scaled_space` derives the same cells in a
larger network (e.g. ``nasnet@n4-f32-3x224x224-k1000``), sharing this space's architectures.

String form: ``normal:<block>,<block>,...|reduce:<block>,...`` where a block is
``<op>~<input>+<op>~<input>``, e.g. ``sep_conv_3x3~1+identity~0``.

Layer keys: ``cell_stem``, ``relu_conv_bn`` (1x1 preprocessing), ``factorized_reduce``,
``sep_conv``, ``dil2_conv``, ``avg_pool``, ``max_pool``, ``conv_1x7_7x1`` (kernel, stride,
channels and input size in the key) and ``cell_classifier``. A stride-1 identity runs no
operator; block sums and the output concatenation are not keyed.
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

OPS = ("sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "dil_conv_3x3", "avg_pool_3x3",
       "max_pool_3x3", "identity", "conv_1x7_7x1")
CELLS = ("normal", "reduce")
_POOLS = ("avg_pool_3x3", "max_pool_3x3")
STEM_MULTIPLIER = 3
_FIELDS = ("in1", "op1", "in2", "op2")


@dataclass(frozen=True)
class Block:
    """One block's choices: ``op1`` applied to state ``in1`` plus ``op2`` on ``in2``."""

    in1: int
    op1: str
    in2: int
    op2: str


@dataclass(frozen=True)
class BlockPlan:
    """A block at one position: the layer key of each of its two operations (None when the
    operation runs nothing, i.e. a stride-1 identity)."""

    block: Block
    key1: LayerKey | None
    key2: LayerKey | None


@dataclass(frozen=True)
class CellPlan:
    """One cell of the network: preprocessing keys, blocks, and which states it concatenates.

    ``channels`` is ``C`` (per state), ``h``×``w`` the input size of its states 0 and 1 after
    preprocessing; the output has ``channels * len(concat)`` channels.
    """

    reduction: bool
    channels: int
    h: int
    w: int
    pre0: LayerKey
    pre1: LayerKey
    blocks: tuple[BlockPlan, ...]
    concat: tuple[int, ...]

    @property
    def out_channels(self) -> int:
        return self.channels * len(self.concat)


@dataclass(frozen=True)
class NetworkPlan:
    stem: tuple[LayerKey, ...]
    cells: tuple[CellPlan, ...]
    classifier: LayerKey


@dataclass(frozen=True)
class CellPosition:
    """One cell slot of the network, independent of the architecture.

    ``channels`` is the cell's ``C``; ``h``×``w`` its input size, ``oh``×``ow`` its output
    size; ``hpp``×``wpp`` the size of its older input (state 0); ``cpp_options`` and
    ``cp_options`` the channel counts its two inputs can have.
    """

    reduction: bool
    reduction_prev: bool
    channels: int
    h: int
    w: int
    oh: int
    ow: int
    hpp: int
    wpp: int
    cpp_options: tuple[int, ...]
    cp_options: tuple[int, ...]

    def pre0_key(self, cpp: int) -> LayerKey:
        if self.reduction_prev:
            return LayerKey("factorized_reduce", cpp, self.channels, self.hpp, self.wpp,
                            stride=2)
        return LayerKey("relu_conv_bn", cpp, self.channels, self.h, self.w)

    def pre1_key(self, cp: int) -> LayerKey:
        return LayerKey("relu_conv_bn", cp, self.channels, self.h, self.w)

    def edge_key(self, op: str, src: int) -> LayerKey | None:
        """The key of ``op`` applied to state ``src`` (strided on a reduction's inputs)."""
        if self.reduction and src < 2:
            return op_key(op, self.channels, self.h, self.w, 2)
        return op_key(op, self.channels, self.oh, self.ow, 1)


def op_key(op: str, channels: int, h: int, w: int, stride: int) -> LayerKey | None:
    """The layer key of one cell operation on a ``channels``×``h``×``w`` state."""
    c = channels
    m = re.fullmatch(r"sep_conv_(\d)x\1", op)
    if m:
        return LayerKey("sep_conv", c, c, h, w, kernel=int(m.group(1)), stride=stride)
    if op == "dil_conv_3x3":
        return LayerKey("dil2_conv", c, c, h, w, kernel=3, stride=stride)
    if op in ("avg_pool_3x3", "max_pool_3x3"):
        return LayerKey(op[:8], c, c, h, w, kernel=3, stride=stride)
    if op == "conv_1x7_7x1":
        return LayerKey("conv_1x7_7x1", c, c, h, w, kernel=7, stride=stride)
    if op == "identity":
        return None if stride == 1 else LayerKey("factorized_reduce", c, c, h, w, stride=2)
    raise ArchError(f"unknown NASNet operation {op!r}; known: {', '.join(OPS)}")


def unused_states(blocks: tuple[Block, ...]) -> tuple[int, ...]:
    """Block-output states (``2 .. B+1``) that no block takes as input (never empty)."""
    used = {b.in1 for b in blocks} | {b.in2 for b in blocks}
    return tuple(s for s in range(2, len(blocks) + 2) if s not in used)


class NasNetSpace(ScalableSpace):
    """Normal + reduction cells of ``blocks`` blocks in a stacked skeleton (module docstring)."""

    family = "nasnet"
    #: MACs and params of the network equal the sums over layers(arch) (tested), so costs
    #: can be summed from per-layer counts cached by LayerKey.
    costs_are_layer_sums = True

    def __init__(self, *, name: str, input_shape: tuple[int, int, int], num_classes: int,
                 cells: int, filters: int, blocks: int = 5, dropout: float = 0.0,
                 description: str = "") -> None:
        if cells < 1 or filters < 2 or blocks < 1:
            raise ValueError(f"need cells >= 1, filters >= 2, blocks >= 1; got {cells}, "
                             f"{filters}, {blocks}")
        decisions = []
        for cell in CELLS:
            for b in range(blocks):
                inputs = tuple(range(b + 2))
                decisions += [Decision(f"{cell}.b{b}.in1", inputs),
                              Decision(f"{cell}.b{b}.op1", OPS),
                              Decision(f"{cell}.b{b}.in2", inputs),
                              Decision(f"{cell}.b{b}.op2", OPS)]
        super().__init__(name=name, decisions=decisions, input_shape=input_shape,
                         num_classes=num_classes, cells=cells, filters=filters,
                         description=description)
        self.blocks = blocks
        self.dropout = dropout

    def scaled(self, *, name: str, cells: int, filters: int,
               input_shape: tuple[int, int, int], num_classes: int) -> NasNetSpace:
        """The same cells in a network of another size (see :mod:`.scaled`)."""
        return NasNetSpace(name=name, input_shape=input_shape, num_classes=num_classes,
                           cells=cells, filters=filters, blocks=self.blocks,
                           dropout=self.dropout,
                           description=f"{self.name} cells stacked with N={cells}, "
                                       f"F={filters}, input {'x'.join(map(str, input_shape))}")

    # -- structured view -----------------------------------------------------------------
    def genotype(self, arch: Architecture) -> dict[str, tuple[Block, ...]]:
        """``{"normal": blocks, "reduce": blocks}``."""
        self.validate(arch)
        n = len(_FIELDS)
        out = {}
        for c, cell in enumerate(CELLS):
            vals = arch.values[c * self.blocks * n:(c + 1) * self.blocks * n]
            out[cell] = tuple(Block(*vals[i * n:(i + 1) * n]) for i in range(self.blocks))
        return out

    def from_genotype(self, normal: tuple[Block, ...], reduce: tuple[Block, ...]) -> Architecture:
        values = tuple(getattr(b, f) for blocks in (normal, reduce) for b in blocks
                       for f in _FIELDS)
        arch = Architecture(self.name, values)
        self.validate(arch)
        return arch

    # -- codec ---------------------------------------------------------------------------
    def encode(self, arch: Architecture) -> str:
        g = self.genotype(arch)
        return "|".join(
            f"{cell}:" + ",".join(f"{b.op1}~{b.in1}+{b.op2}~{b.in2}" for b in g[cell])
            for cell in CELLS)

    def decode(self, text: str) -> Architecture:
        if not isinstance(text, str) or not text.strip():
            raise ArchError("empty architecture string")
        parts = text.strip().split("|")
        if len(parts) != 2:
            raise ArchError(f"a NASNet architecture is 'normal:...|reduce:...', got {len(parts)}"
                            f" part(s) in {text!r}")
        cells = []
        for cell, part in zip(CELLS, parts, strict=True):
            prefix, _, body = part.strip().partition(":")
            if prefix != cell:
                raise ArchError(f"expected the {cell} cell as '{cell}:...', got {part!r}")
            tokens = body.split(",")
            if len(tokens) != self.blocks:
                raise ArchError(f"{cell} cell needs {self.blocks} blocks separated by ',', got "
                                f"{len(tokens)}")
            cells.append(tuple(self._decode_block(cell, b, tok) for b, tok in enumerate(tokens)))
        return self.from_genotype(*cells)

    def _decode_block(self, cell: str, b: int, tok: str) -> Block:
        m = re.fullmatch(r"([a-z0-9_]+)~(\d+)\+([a-z0-9_]+)~(\d+)", tok.strip())
        if not m:
            raise ArchError(f"{cell} block {b}: malformed {tok!r}; expected op~input+op~input")
        op1, in1, op2, in2 = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        for op in (op1, op2):
            if op not in OPS:
                raise ArchError(f"{cell} block {b}: unknown operation {op!r}; allowed: "
                                f"{', '.join(OPS)}")
        for i in (in1, in2):
            if i > b + 1:
                raise ArchError(f"{cell} block {b}: input {i} in {tok!r} is not an earlier "
                                f"state; allowed 0..{b + 1}")
        return Block(in1, op1, in2, op2)

    # -- structure -----------------------------------------------------------------------
    def _stem(self) -> tuple[list[LayerKey], int, int]:
        cin, h, w = self.input_shape
        keys = []
        while h > 32 or w > 32:
            keys.append(LayerKey("cell_stem", cin, self.filters, h, w, kernel=3, stride=2,
                                 act="relu"))
            cin, h, w = self.filters, -(-h // 2), -(-w // 2)
        keys.append(LayerKey("cell_stem", cin, STEM_MULTIPLIER * self.filters, h, w,
                             kernel=3))
        return keys, h, w

    def _reduction_positions(self) -> tuple[int, int]:
        return self.cells, 2 * self.cells + 1

    def plan(self, arch: Architecture) -> NetworkPlan:
        """The network's structure with the layer key of every operator."""
        g = self.genotype(arch)
        stem, _, _ = self._stem()
        cpp = cp = STEM_MULTIPLIER * self.filters
        cells = []
        for pos in self.positions():
            blocks = g["reduce" if pos.reduction else "normal"]
            planned = tuple(BlockPlan(b, pos.edge_key(b.op1, b.in1), pos.edge_key(b.op2, b.in2))
                            for b in blocks)
            cell = CellPlan(pos.reduction, pos.channels, pos.h, pos.w, pos.pre0_key(cpp),
                            pos.pre1_key(cp), planned, unused_states(blocks))
            cells.append(cell)
            cpp, cp = cp, cell.out_channels
        last = self.positions()[-1]
        classifier = LayerKey("cell_classifier", cp, self.num_classes, last.oh, last.ow)
        return NetworkPlan(tuple(stem), tuple(cells), classifier)

    def layers(self, arch: Architecture) -> list[LayerKey]:
        plan = self.plan(arch)
        keys = list(plan.stem)
        for cell in plan.cells:
            keys += [cell.pre0, cell.pre1]
            for bp in cell.blocks:
                keys += [k for k in (bp.key1, bp.key2) if k is not None]
        keys.append(plan.classifier)
        return keys

    def runtime_layers(self, arch: Architecture) -> list[LayerKey]:
        """:meth:`layers` as the exported graph runs them: without dead code (the 1x1
        preprocessing of an input state no block uses; every cell whose output no live cell
        reads) and with one pooling where a cell pools the same state twice alike (the
        exporter's common-subexpression elimination merges them)."""
        plan = self.plan(arch)
        cells = plan.cells
        used = [{i for bp in c.blocks for i in (bp.block.in1, bp.block.in2)} for c in cells]
        live = [False] * len(cells)
        live[-1] = True
        for i in range(len(cells) - 2, -1, -1):
            live[i] = (live[i + 1] and 1 in used[i + 1]) or \
                (i + 2 < len(cells) and live[i + 2] and 0 in used[i + 2])
        keys = list(plan.stem)
        for cell, alive, inputs in zip(cells, live, used, strict=True):
            if not alive:
                continue
            keys += [k for i, k in ((0, cell.pre0), (1, cell.pre1)) if i in inputs]
            pooled: set[tuple[int, str]] = set()  # the export merges equal pools of a state
            for bp in cell.blocks:
                for src, op, key in ((bp.block.in1, bp.block.op1, bp.key1),
                                     (bp.block.in2, bp.block.op2, bp.key2)):
                    if key is None or (op in _POOLS and (src, op) in pooled):
                        continue
                    pooled.add((src, op))
                    keys.append(key)
        keys.append(plan.classifier)
        return keys

    def positions(self) -> list[CellPosition]:
        """Every cell position of the network with what any architecture can put there."""
        _, h, w = self._stem()
        cpp_set: tuple[int, ...] = (STEM_MULTIPLIER * self.filters,)
        cp_set = cpp_set
        hpp, wpp = h, w
        c = self.filters
        reduction_prev = False
        out = []
        for i in range(3 * self.cells + 2):
            reduction = i in self._reduction_positions()
            if reduction:
                c *= 2
            oh, ow = (-(-h // 2), -(-w // 2)) if reduction else (h, w)
            out.append(CellPosition(reduction, reduction_prev, c, h, w, oh, ow, hpp, wpp,
                                    tuple(sorted(cpp_set)), tuple(sorted(cp_set))))
            cpp_set, cp_set = cp_set, tuple(c * k for k in range(1, self.blocks + 1))
            hpp, wpp, h, w = h, w, oh, ow
            reduction_prev = reduction
        return out

    def output_channel_options(self) -> tuple[int, ...]:
        """Possible channel counts of the last cell's output (the classifier's input)."""
        c = self.filters * 4
        return tuple(c * k for k in range(1, self.blocks + 1))

    def enumerate_layers(self) -> list[LayerKey]:
        """Every key of every architecture: each operation at each cell position and stride,
        and the preprocessing keys for every possible width of the previous cells' outputs
        (``C * k`` for ``k = 1 .. B`` unused states)."""
        stem, _, _ = self._stem()
        keys: set[LayerKey | None] = set(stem)
        for pos in self.positions():
            keys.update(pos.pre0_key(cpp) for cpp in pos.cpp_options)
            keys.update(pos.pre1_key(cp) for cp in pos.cp_options)
            for op in OPS:
                keys.add(op_key(op, pos.channels, pos.oh, pos.ow, 1))
                if pos.reduction:
                    keys.add(op_key(op, pos.channels, pos.h, pos.w, 2))
        last = self.positions()[-1]
        keys.update(LayerKey("cell_classifier", cp, self.num_classes, last.oh, last.ow)
                    for cp in self.output_channel_options())
        return sorted(k for k in keys if k is not None)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["skeleton"] = {"cells_per_stack": self.cells, "filters": self.filters,
                            "blocks": self.blocks, "stem_multiplier": STEM_MULTIPLIER,
                            "operations": list(OPS)}
        return info
