"""build_model(arch): a plain nn.Module for any architecture of a registered space."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mobile_nas.errors import ArchError
from mobile_nas.models.blocks import build_layer, init_weights
from mobile_nas.registry import Registry
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace

ModelBuilder = Callable[[SearchSpace, Architecture], nn.Module]
#: space family → ``fn(space, arch) -> nn.Module``
MODEL_BUILDERS: Registry[ModelBuilder] = Registry("model builder", ArchError)


def register_builder(family: str):
    """Decorator: registers the model builder of a space family (refuses duplicates)."""

    def wrap(fn: ModelBuilder) -> ModelBuilder:
        return MODEL_BUILDERS.register(family, fn)

    return wrap


def build_model(arch: Architecture) -> nn.Module:
    """A freshly initialised network for ``arch``, ready for training and ONNX export.

    Its input is the space's ``input_shape`` (normalized pixels, N×C×H×W); its output the
    class logits.
    """
    space = arch.search_space
    space.validate(arch)
    if space.family not in MODEL_BUILDERS:
        raise ArchError(f"no model builder for space family {space.family!r}")
    builder = MODEL_BUILDERS.get(space.family)
    model = builder(space, arch)
    return model


class MobileNet(nn.Sequential):
    """Stem, stage blocks, head and classifier, one child per LayerKey of the architecture."""


@register_builder("mobile")
def _build_mobile(space: SearchSpace, arch: Architecture) -> nn.Module:
    model = MobileNet(*(build_layer(k, dropout=space.dropout) for k in space.layers(arch)))
    init_weights(model)
    return model
