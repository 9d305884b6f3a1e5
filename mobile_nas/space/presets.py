"""The built-in spaces, declared as data in ``presets.json`` beside this module: ``mobile224``
(ImageNet-style) and ``fmnist28`` (Fashion-MNIST) of the mobile family, and the cell spaces
``nasnet`` (a Fashion-MNIST-sized proxy) and ``nb201`` (resized by :mod:`~mobile_nas.space.scaled`).

Each entry names its ``family``; one constructor per family turns the entry's parameters into
the space, and every space is registered when this module loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mobile_nas.space.base import SearchSpace
from mobile_nas.space.mobile import MobileSpace, StageSpec
from mobile_nas.space.nasnet import NasNetSpace
from mobile_nas.space.nb201 import NB201Space
from mobile_nas.space.registry import SPACES, register_space

#: The shipped built-in spaces.
PRESETS_FILE = Path(__file__).with_name("presets.json")


def _shape(value: list[int]) -> tuple[int, int, int]:
    c, h, w = value
    return c, h, w


def _mobile_space(*, stage_choices: dict[str, list[Any]], stages: list[dict[str, Any]],
                  **params: Any) -> MobileSpace:
    """A mobile space whose every stage offers ``stage_choices`` (ops, kernels, acts, se) with
    its own stride, layer counts and channels."""
    choices = {k: tuple(v) for k, v in stage_choices.items()}
    return MobileSpace(stages=tuple(
        StageSpec(stride=st["stride"], layers=tuple(st["layers"]),
                  channels=tuple(st["channels"]), **choices) for st in stages), **params)


#: family → the constructor of a space of that family from its entry's parameters.
_CONSTRUCTORS: dict[str, Callable[..., SearchSpace]] = {
    "mobile": _mobile_space, "nasnet": NasNetSpace, "nb201": NB201Space,
}


def load_builtin_spaces(path: Path = PRESETS_FILE) -> tuple[SearchSpace, ...]:
    """The spaces declared in ``path``, in its order."""
    spaces: list[SearchSpace] = []
    for entry in json.loads(path.read_text())["spaces"]:
        params = {k: v for k, v in entry.items() if k != "family"}
        params["input_shape"] = _shape(params["input_shape"])
        spaces.append(_CONSTRUCTORS[entry["family"]](**params))
    return tuple(spaces)


for _space in load_builtin_spaces():
    if _space.name not in SPACES:
        register_space(_space)
