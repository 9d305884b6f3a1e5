"""The registry of weight-sharing supernets by space family.

Each module defining a supernet registers it (:mod:`~mobile_nas.models.supernet`: ``mobile``;
:mod:`~mobile_nas.models.cell_supernet`: ``nasnet``, ``nb201``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from mobile_nas.errors import ArchError
from mobile_nas.registry import Registry

#: space family → supernet class (called with the space)
SUPERNETS: Registry[Callable[[Any], nn.Module]] = Registry("supernet", ArchError)


def register_supernet(family: str):
    """Decorator: registers the supernet class of a space family (refuses duplicates)."""

    def wrap(cls):
        return SUPERNETS.register(family, cls)

    return wrap
