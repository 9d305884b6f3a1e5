"""The registry of search spaces by name.

The built-in spaces (:mod:`~mobile_nas.space.presets`) register themselves, and
:mod:`~mobile_nas.space.scaled` registers the resolver of ``<base>@<knobs>`` names, when the
package loads; this module imports neither, so every module of the package may import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mobile_nas.errors import SpaceError
from mobile_nas.registry import Registry

if TYPE_CHECKING:
    from mobile_nas.space.base import SearchSpace

SPACES: Registry[SearchSpace] = Registry("search space", SpaceError)

#: Marker in a name → the function that builds (and registers) the space so named on first
#: use, e.g. ``"@"`` → :func:`mobile_nas.space.scaled.resolve_scaled_name`.
_RESOLVERS: dict[str, Callable[[str], SearchSpace]] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    return SPACES.register(space.name, space)


def register_resolver(marker: str, resolve: Callable[[str], SearchSpace]) -> None:
    """Lets :func:`get_space` build spaces whose unregistered names contain ``marker``."""
    _RESOLVERS[marker] = resolve


def get_space(name: str) -> SearchSpace:
    """The registered space ``name``; raises :class:`SpaceError` listing the known ones."""
    if isinstance(name, str) and name not in SPACES:
        for marker, resolve in _RESOLVERS.items():
            if marker in name:
                return resolve(name)  # e.g. nasnet@n4-f32-r224 (cell spaces, resized)
    return SPACES.get(name)


def canonical_space_name(name: str | None) -> str | None:
    """The registered name of space ``name`` (a scaled space has several spellings, e.g.
    ``nasnet@n2-f12`` is ``nasnet@n2-f12-1x28x28-k10``), so that arch JSON files recording
    the canonical name match; None stays None. Raises :class:`SpaceError` for unknown
    spaces."""
    if name is None:
        return None
    return get_space(name).name


def list_spaces(pattern: str = "*") -> list[str]:
    return SPACES.names(pattern)
