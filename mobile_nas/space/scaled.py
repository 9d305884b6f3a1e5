"""Scaled cell spaces: the same cells stacked in a network of another size.

Cell spaces (``nasnet``, ``nb201``) carry their size knobs — cells per stack ``N``,
initial filters ``F``, input shape and class count. A cell searched on a small proxy
transfers to a large network by re-reading the *same choices* in a scaled space::

    big = scaled_space("nasnet", cells=4, filters=32, input_size=224, channels=3,
                       num_classes=1000)
    big.name == "nasnet@n4-f32-3x224x224-k1000"
    transfer_arch(arch, big)          # same cells, scaled network

:class:`SizeKnobs` holds the knobs a user gives (``--cells``, ``--filters``, ``--input``,
``--channels``, ``--classes`` on transfer, train and export); a knob left out keeps the value
of the space being resized.

A scaled space is registered under its canonical name, and ``get_space`` resolves any name
of the form ``<base>@<token>-<token>...`` on first use, with tokens ``n<N>``, ``f<F>``,
``r<size>`` (square input), ``c<channels>``, ``<C>x<H>x<W>`` and ``k<classes>``;
unspecified knobs keep the base's values. So every command that takes ``--space`` (cost,
lut build, train, export, search) works on scaled spaces, and arch JSON files record the
scaled space by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mobile_nas.errors import ArchError, SpaceError
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import ScalableSpace, SearchSpace
from mobile_nas.space.registry import SPACES, get_space, register_resolver, register_space

_TOKEN = re.compile(r"n(?P<n>\d+)|f(?P<f>\d+)|r(?P<r>\d+)|k(?P<k>\d+)|c(?P<ch>\d+)"
                    r"|(?P<c>\d+)x(?P<h>\d+)x(?P<w>\d+)")


def scaled_name(base: str, *, cells: int, filters: int, input_shape: tuple[int, int, int],
                num_classes: int) -> str:
    """The canonical name of a scaled space."""
    c, h, w = input_shape
    return f"{base}@n{cells}-f{filters}-{c}x{h}x{w}-k{num_classes}"


def scaled_space(base: str | SearchSpace, *, cells: int | None = None,
                 filters: int | None = None, input_size: int | None = None,
                 channels: int | None = None, num_classes: int | None = None,
                 input_shape: tuple[int, int, int] | None = None) -> SearchSpace:
    """The space ``base`` resized (None keeps the base's value; ``input_shape`` overrides
    ``channels`` and ``input_size``); registered on first use.

    Raises :class:`SpaceError` if ``base`` is not a scalable cell space or a knob is not a
    positive integer.
    """
    space = get_space(base) if isinstance(base, str) else base
    if "@" in space.name:
        space = get_space(space.name.split("@", 1)[0])
    space = scalable(space)
    c0, h0, w0 = space.input_shape
    if input_shape is None:
        input_shape = (channels or c0, input_size or h0, input_size or w0)
    cells = space.cells if cells is None else cells
    filters = space.filters if filters is None else filters
    num_classes = space.num_classes if num_classes is None else num_classes
    values = {"cells": cells, "filters": filters, "num_classes": num_classes,
              "input_shape": input_shape}
    flat = [cells, filters, num_classes, *input_shape]
    if not all(isinstance(v, int) and v >= 1 for v in flat):
        raise SpaceError(f"scaled space knobs must be positive integers, got {values}")
    name = scaled_name(space.name, cells=cells, filters=filters, input_shape=input_shape,
                       num_classes=num_classes)
    if name in SPACES:
        return SPACES.get(name)
    try:
        new = space.scaled(name=name, cells=cells, filters=filters, input_shape=input_shape,
                           num_classes=num_classes)
    except ValueError as exc:
        raise SpaceError(f"cannot scale {space.name!r}: {exc}") from None
    return register_space(new)


def scalable(space: SearchSpace) -> ScalableSpace:
    """``space`` if it has size knobs; raises :class:`SpaceError` otherwise."""
    if not isinstance(space, ScalableSpace):
        raise SpaceError(f"space {space.name!r} has no size knobs; scalable spaces are cell "
                         f"spaces such as nasnet and nb201")
    return space


def resolve_scaled_name(name: str) -> SearchSpace:
    """Parses ``<base>@<tokens>`` (see module docstring), registers and returns the space;
    the space's ``name`` is the canonical one, which may differ from ``name``."""
    base, _, spec = name.partition("@")
    knobs: dict[str, Any] = {}
    for tok in spec.split("-") if spec else []:
        m = _TOKEN.fullmatch(tok)
        if not m:
            raise SpaceError(f"bad token {tok!r} in scaled space name {name!r}; expected "
                             f"n<cells>, f<filters>, r<size>, c<channels>, <C>x<H>x<W> or "
                             f"k<classes>")
        g = {k: int(v) for k, v in m.groupdict().items() if v is not None}
        if "c" in g:
            knobs["input_shape"] = (g["c"], g["h"], g["w"])
        for short, knob in (("n", "cells"), ("f", "filters"), ("r", "input_size"),
                            ("ch", "channels"), ("k", "num_classes")):
            if short in g:
                knobs[knob] = g[short]
    return scaled_space(base, **knobs)


register_resolver("@", resolve_scaled_name)


def transfer_arch(arch: Architecture, space: SearchSpace | str) -> Architecture:
    """``arch``'s cells in ``space`` (which must share the base space's decisions)."""
    target = get_space(space) if isinstance(space, str) else space
    source = arch.search_space
    if [d for d in source.decisions] != [d for d in target.decisions]:
        raise ArchError(f"architectures of {source.name!r} do not transfer to "
                        f"{target.name!r}: their decisions differ")
    out = Architecture(target.name, arch.values)
    target.validate(out)
    return out


@dataclass(frozen=True)
class SizeKnobs:
    """The size knobs of a cell space, each None to keep the resized space's value: cells
    per stack, initial filters, square input size in pixels, input channels, classes."""

    cells: int | None = None
    filters: int | None = None
    input_size: int | None = None
    channels: int | None = None
    num_classes: int | None = None

    @property
    def given(self) -> bool:
        """Whether any knob is set (none set: nothing to resize)."""
        return any(v is not None for v in (self.cells, self.filters, self.input_size,
                                           self.channels, self.num_classes))

    def resize(self, space: SearchSpace) -> SearchSpace:
        """``space`` resized by these knobs; a knob left out keeps ``space``'s value (also
        when ``space`` is itself scaled). Raises :class:`SpaceError` for a space without
        size knobs or a knob that is not a positive integer."""
        space = scalable(space)
        c, h, w = space.input_shape
        shape = (_pick(self.channels, c), _pick(self.input_size, h), _pick(self.input_size, w))
        return scaled_space(space, cells=_pick(self.cells, space.cells),
                            filters=_pick(self.filters, space.filters),
                            num_classes=_pick(self.num_classes, space.num_classes),
                            input_shape=shape)

    def transfer(self, arch: Architecture) -> Architecture:
        """``arch`` restacked at the size these knobs give (``arch`` itself when no knob is
        set)."""
        if not self.given:
            return arch
        return transfer_arch(arch, self.resize(arch.search_space))


def _pick(given: int | None, kept: int) -> int:
    return kept if given is None else given
