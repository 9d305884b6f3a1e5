"""build_model(arch): a plain nn.Module for any architecture of a registered space."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mobile_nas.errors import ArchError
from mobile_nas.models.blocks import build_layer, init_weights
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace

_BUILDERS: dict[str, Callable[[SearchSpace, Architecture], nn.Module]] = {}


def register_builder(family: str):
    """Decorator: registers the model builder of a space family (refuses duplicates)."""

    def wrap(fn: Callable[[SearchSpace, Architecture], nn.Module]):
        if family in _BUILDERS:
            raise ValueError(f"a builder for family {family!r} is already registered")
        _BUILDERS[family] = fn
        return fn

    return wrap


def build_model(arch: Architecture) -> nn.Module:
    """A freshly initialised network for ``arch``, ready for training and ONNX export.

    Its input is the space's ``input_shape`` (normalized pixels, N×C×H×W); its output the
    class logits.
    """
    space = arch.search_space
    space.validate(arch)
    try:
        builder = _BUILDERS[space.family]
    except KeyError:
        raise ArchError(f"no model builder for space family {space.family!r}") from None
    model = builder(space, arch)
    return model


class MobileNet(nn.Sequential):
    """Stem, stage blocks, head and classifier, one child per LayerKey of the architecture."""


@register_builder("mobile")
def _build_mobile(space: SearchSpace, arch: Architecture) -> nn.Module:
    dropout = getattr(space, "dropout", 0.0)
    model = MobileNet(*(build_layer(k, dropout=dropout) for k in space.layers(arch)))
    init_weights(model)
    return model
