"""SearchSpace: the abstract contract every space (mobile, cell, NAS-Bench-201) fulfils."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from mobile_nas.errors import ArchError
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.decision import Decision
from mobile_nas.space.layers import LayerKey


class SearchSpace(ABC):
    """A factorized space: an ordered tuple of :class:`Decision`.

    Subclasses define the string codec (``encode``/``decode``), the layers an architecture
    contains (``layers``) and every distinct layer any architecture can contain
    (``enumerate_layers``, what a latency table must profile). ``family`` tells
    :func:`mobile_nas.models.build_model` which builder to use. Spaces are immutable.
    """

    family: str = ""
    # -- capabilities: what callers may rely on, declared by each space class ----------------
    #: MACs and params of the network equal the sums over ``layers(arch)``, so costs can be
    #: summed from per-layer counts cached by LayerKey.
    costs_are_layer_sums: bool = False
    #: a cell-stacked space with size knobs (``cells``, ``filters``, ``scaled(...)``).
    supports_scaling: bool = False
    #: built from stages (``stage_configs(arch)``), as mobile spaces are.
    has_stages: bool = False
    #: has ``largest_arch()`` and ``smallest_arch()`` (the sandwich rule's extreme paths).
    has_extreme_archs: bool = False
    #: dropout before the classifier of the built network (spaces that have one set it)
    dropout: float = 0.0

    def __init__(self, *, name: str, decisions: Sequence[Decision],
                 input_shape: tuple[int, int, int], num_classes: int,
                 description: str = "") -> None:
        names = [d.name for d in decisions]
        if len(set(names)) != len(names):
            raise ValueError(f"space {name!r} has duplicate decision names")
        c, h, w = input_shape
        self.name = name
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        self.input_shape = (c, h, w)
        self.num_classes = num_classes
        self.description = description

    # -- size, sampling, validation -------------------------------------------------------
    def size(self) -> int:
        """Number of architectures (product of the decisions' choice counts)."""
        return math.prod(len(d) for d in self.decisions)

    def sample(self, rng: np.random.Generator | int | None = None) -> Architecture:
        """One architecture, each decision drawn uniformly and independently."""
        rng = np.random.default_rng(rng)
        return self.from_indices([int(rng.integers(len(d))) for d in self.decisions])

    def from_indices(self, indices: Sequence[int]) -> Architecture:
        if len(indices) != len(self.decisions):
            raise ArchError(f"expected {len(self.decisions)} indices, got {len(indices)}")
        values = []
        for d, i in zip(self.decisions, indices, strict=True):
            if not 0 <= int(i) < len(d):
                raise ArchError(f"index {i} out of range for decision {d.name} ({len(d)} choices)")
            values.append(d.choices[int(i)])
        return Architecture(self.name, tuple(values))

    def make(self, choices: dict[str, Any]) -> Architecture:
        """Architecture from a ``{decision name: value}`` mapping (every decision required)."""
        missing = [d.name for d in self.decisions if d.name not in choices]
        unknown = sorted(set(choices) - {d.name for d in self.decisions})
        if missing or unknown:
            raise ArchError(f"decisions missing {missing}, unknown {unknown}")
        arch = Architecture(self.name, tuple(choices[d.name] for d in self.decisions))
        self.validate(arch)
        return arch

    def validate(self, arch: Architecture) -> None:
        """Raises :class:`ArchError` unless ``arch`` belongs to this space."""
        if arch.space != self.name:
            raise ArchError(f"architecture is from space {arch.space!r}, not {self.name!r}")
        if len(arch.values) != len(self.decisions):
            raise ArchError(f"expected {len(self.decisions)} decisions, got {len(arch.values)}")
        for d, v in zip(self.decisions, arch.values, strict=True):
            d.index(v)

    # -- codec and layers (per space) -----------------------------------------------------
    @abstractmethod
    def encode(self, arch: Architecture) -> str:
        """The compact string form; ``decode(encode(a)) == a``."""

    @abstractmethod
    def decode(self, text: str) -> Architecture:
        """Parses the string form; raises :class:`ArchError` naming the offending token."""

    @abstractmethod
    def layers(self, arch: Architecture) -> list[LayerKey]:
        """The layers of ``arch`` in execution order (stem and head included)."""

    def runtime_layers(self, arch: Architecture) -> list[LayerKey]:
        """The layers an exported ``arch`` actually runs, which latency tables sum.

        ONNX export and onnxruntime drop operators whose result never reaches the output;
        a space where that can happen overrides this (default: :meth:`layers`).
        """
        return self.layers(arch)

    def extreme_archs(self) -> dict[str, Architecture]:
        """Named extremes of the space (e.g. ``smallest``, ``largest``), where it has an
        order by size; empty otherwise (cell spaces)."""
        return {}

    @abstractmethod
    def enumerate_layers(self) -> list[LayerKey]:
        """Every distinct layer any architecture of the space can contain, sorted."""

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary for ``mobile-nas space show``."""
        return {
            "name": self.name,
            "family": self.family,
            "description": self.description,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "size": self.size(),
            "log10_size": round(math.log10(self.size()), 2),
            "num_layer_keys": len(self.enumerate_layers()),
            "decisions": [{"name": d.name, "choices": list(d.choices)} for d in self.decisions],
        }


class ScalableSpace(SearchSpace):
    """A cell-stacked space with size knobs: ``cells`` per stack, initial ``filters`` and
    :meth:`scaled` (see :mod:`mobile_nas.space.scaled`)."""

    supports_scaling = True
    cells: int
    filters: int

    def __init__(self, *, name: str, decisions: Sequence[Decision],
                 input_shape: tuple[int, int, int], num_classes: int, cells: int, filters: int,
                 description: str = "") -> None:
        super().__init__(name=name, decisions=decisions, input_shape=input_shape,
                         num_classes=num_classes, description=description)
        self.cells = cells
        self.filters = filters

    @abstractmethod
    def scaled(self, *, name: str, cells: int, filters: int,
               input_shape: tuple[int, int, int], num_classes: int) -> ScalableSpace:
        """The same cells in a network of another size."""
