"""Weight-sharing supernets of the cell spaces (NASNet and NAS-Bench-201).

A NASNet block ``b`` of a cell position owns one module per operation (and per stride: in a
reduction cell, states 0 and 1 are read with stride 2), shared by both of the block's inputs
and by whichever earlier state they read. One module per (block, source, operation) as in
DARTS would leave each module trained on about 1 step in 30 of single-path training, far too
few for a supernet trained in minutes; per (block, operation) it is about 1 in 4. An NB201
edge ``i → j`` owns each of its parameterised operations. A sampled architecture runs one
operation per input (single-path one-shot, Guo et al.). The 1×1 preprocessing of a NASNet
cell and the classifier depend on how many states the previous cell concatenated, so they
hold one module per possible width.

Every module is built by :func:`mobile_nas.models.blocks.build_layer` from the layer key the
stand-alone network uses at that position, so :meth:`extract` hands any path's weights to
:func:`mobile_nas.models.build_model`'s network, which then computes exactly the same
function. Batch-norm statistics are path dependent: score a path after
:func:`mobile_nas.models.supernet.recalibrate_batchnorm`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch
from torch import nn

from mobile_nas.errors import ArchError
from mobile_nas.models.blocks import build_layer, init_weights
from mobile_nas.models.build import build_model
from mobile_nas.models.supernet_registry import register_supernet
from mobile_nas.space import nasnet, nb201
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.layers import LayerKey


def _module(key: LayerKey | None, dropout: float = 0.0) -> nn.Module:
    return nn.Identity() if key is None else build_layer(key, dropout=dropout)


class _PathMixin:
    """``set_arch`` / ``forward(x, arch)`` plumbing shared by the cell supernets."""

    space: Any
    _arch: Architecture | None

    def _use_space(self, space: Any, kind: type, needs: str) -> None:
        """Keeps ``space``, refused unless it is a ``kind`` (``needs``: "the NASNet supernet
        needs a nasnet-family space")."""
        if not isinstance(space, kind):
            raise ArchError(f"{needs}, not {space.name!r}")
        self.space = space

    def set_arch(self, arch: Architecture) -> None:
        self.space.validate(arch)
        self._arch = arch

    def _path(self, arch: Architecture | None) -> Architecture:
        arch = arch or self._arch
        if arch is None:
            raise ArchError("no architecture: pass one or call set_arch first")
        return arch

    def describe(self) -> dict[str, Any]:
        return {"space": self.space.name,
                "params": sum(p.numel() for p in self.parameters())}  # type: ignore[attr-defined]


# -- NASNet ------------------------------------------------------------------------------
class _NasNetSuperCell(nn.Module):
    def __init__(self, pos: nasnet.CellPosition, blocks: int) -> None:
        super().__init__()
        self.pre0 = nn.ModuleDict({str(c): build_layer(pos.pre0_key(c))
                                   for c in pos.cpp_options})
        self.pre1 = nn.ModuleDict({str(c): build_layer(pos.pre1_key(c))
                                   for c in pos.cp_options})
        sources = (0, 2) if pos.reduction else (0,)  # one per stride
        self.edges = nn.ModuleDict({
            _edge_name(pos, b, src, op): _module(pos.edge_key(op, src))
            for b in range(blocks) for src in sources for op in nasnet.OPS})
        self.pos = pos

    def forward(self, s0: torch.Tensor, s1: torch.Tensor,
                plan: nasnet.CellPlan) -> torch.Tensor:
        states = [self.pre0[str(s0.shape[1])](s0), self.pre1[str(s1.shape[1])](s1)]
        for b, bp in enumerate(plan.blocks):
            blk = bp.block
            states.append(
                self.edges[_edge_name(self.pos, b, blk.in1, blk.op1)](states[blk.in1])
                + self.edges[_edge_name(self.pos, b, blk.in2, blk.op2)](states[blk.in2]))
        return torch.cat([states[i] for i in plan.concat], dim=1)


def _edge_name(pos: nasnet.CellPosition, block: int, src: int, op: str) -> str:
    """The module of ``op`` in ``block`` reading state ``src`` (``..._s2``: strided)."""
    return f"b{block}_{op}" + ("_s2" if pos.reduction and src < 2 else "")


class NasNetSupernet(_PathMixin, nn.Module):
    """Supernet of a :class:`~mobile_nas.space.nasnet.NasNetSpace`; ``forward(x, arch)``."""

    def __init__(self, space: nasnet.NasNetSpace) -> None:
        super().__init__()
        self._use_space(space, nasnet.NasNetSpace,
                        "the NASNet supernet needs a nasnet-family space")
        stem, _, _ = space._stem()
        self.stem = nn.Sequential(*(build_layer(k) for k in stem))
        positions = space.positions()
        self.cells = nn.ModuleList(_NasNetSuperCell(p, space.blocks) for p in positions)
        last = positions[-1]
        self.classifier = nn.ModuleDict({
            str(c): build_layer(LayerKey("cell_classifier", c, space.num_classes, last.oh,
                                         last.ow), dropout=space.dropout)
            for c in space.output_channel_options()})
        self._arch = None
        self._plan = lru_cache(maxsize=4096)(space.plan)
        init_weights(self)

    def forward(self, x: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        plan = self._plan(self._path(arch))
        s0 = s1 = self.stem(x)
        for cell, cell_plan in zip(self.cells, plan.cells, strict=True):
            s0, s1 = s1, cell(s0, s1, cell_plan)
        return self.classifier[str(s1.shape[1])](s1)

    def extract(self, arch: Architecture) -> nn.Module:
        """The stand-alone network of ``arch`` carrying this supernet's weights."""
        model: Any = build_model(arch)  # a cells.NasNet: stem, cells, classifier
        plan = self._plan(arch)
        model.stem.load_state_dict(self.stem.state_dict())
        for cell, sup, cp in zip(model.cells, self.cells, plan.cells, strict=True):
            assert isinstance(sup, _NasNetSuperCell)  # self.cells holds nothing else
            cell.pre0.load_state_dict(sup.pre0[str(cp.pre0.cin)].state_dict())
            cell.pre1.load_state_dict(sup.pre1[str(cp.pre1.cin)].state_dict())
            for b, bp in enumerate(cp.blocks):
                for j, (src, op) in enumerate(((bp.block.in1, bp.block.op1),
                                               (bp.block.in2, bp.block.op2))):
                    cell.ops[2 * b + j].load_state_dict(
                        sup.edges[_edge_name(sup.pos, b, src, op)].state_dict())
        model.classifier.load_state_dict(
            self.classifier[str(plan.classifier.cin)].state_dict())
        return model.eval()


# -- NAS-Bench-201 -----------------------------------------------------------------------
_PARAMETERISED = tuple(op for op in nb201.OPS if op not in ("none", "skip_connect"))


class _NB201SuperCell(nn.Module):
    def __init__(self, channels: int, h: int, w: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict({
            f"{to}_{src}_{op}": _module(nb201.op_key(op, channels, h, w))
            for to, src in nb201.EDGES for op in _PARAMETERISED})

    def forward(self, x: torch.Tensor, ops: tuple[str, ...]) -> torch.Tensor:
        nodes = [x]
        for j in range(1, nb201.NODES):
            terms = []
            for (to, src), op in zip(nb201.EDGES, ops, strict=True):
                if to != j or op == "none":
                    continue
                terms.append(nodes[src] if op == "skip_connect"
                             else self.edges[f"{to}_{src}_{op}"](nodes[src]))
            nodes.append(sum(terms[1:], terms[0]) if terms else x * 0.0)
        return nodes[-1]


class NB201Supernet(_PathMixin, nn.Module):
    """Supernet of an :class:`~mobile_nas.space.nb201.NB201Space` (every cell of the
    network shares the architecture, as in NAS-Bench-201, but owns its weights)."""

    def __init__(self, space: nb201.NB201Space) -> None:
        super().__init__()
        self._use_space(space, nb201.NB201Space, "the NB201 supernet needs an nb201-family space")
        skeleton = space.plan(space.make({d.name: "nor_conv_3x3" for d in space.decisions}))
        self.stem = build_layer(skeleton.stem)
        body: list[nn.Module] = []
        for s, cells in enumerate(skeleton.stages):
            if s:
                body.append(build_layer(skeleton.reductions[s - 1]))
            body.extend(_NB201SuperCell(c.channels, c.h, c.w) for c in cells)
        self.cells = nn.ModuleList(body)
        self.head = build_layer(skeleton.head)
        self._arch = None
        init_weights(self)

    def forward(self, x: torch.Tensor, arch: Architecture | None = None) -> torch.Tensor:
        ops = self._path(arch).values
        out = self.stem(x)
        for module in self.cells:
            out = module(out, ops) if isinstance(module, _NB201SuperCell) else module(out)
        return self.head(out)

    def extract(self, arch: Architecture) -> nn.Module:
        """The stand-alone network of ``arch`` carrying this supernet's weights."""
        model: Any = build_model(arch)  # a cells.NB201Network: stem, cells, head
        model.stem.load_state_dict(self.stem.state_dict())
        for target, sup in zip(model.cells, self.cells, strict=True):
            if not isinstance(sup, _NB201SuperCell):
                target.load_state_dict(sup.state_dict())
                continue
            live = [(to, src, op) for (to, src), op in zip(nb201.EDGES, arch.values,
                                                          strict=True) if op != "none"]
            for module, (to, src, op) in zip(target.ops, live, strict=True):
                if op != "skip_connect":
                    module.load_state_dict(sup.edges[f"{to}_{src}_{op}"].state_dict())
        model.head.load_state_dict(self.head.state_dict())
        return model.eval()


register_supernet("nasnet")(NasNetSupernet)
register_supernet("nb201")(NB201Supernet)
