"""The registry of search spaces by name."""

from __future__ import annotations

from mobile_nas.errors import SpaceError
from mobile_nas.registry import Registry
from mobile_nas.space.base import SearchSpace

SPACES: Registry[SearchSpace] = Registry("search space", SpaceError)


def register_space(space: SearchSpace) -> SearchSpace:
    return SPACES.register(space.name, space)


def get_space(name: str) -> SearchSpace:
    """The registered space ``name``; raises :class:`SpaceError` listing the known ones."""
    import mobile_nas.space.presets  # noqa: F401  (registers the built-in spaces)

    if isinstance(name, str) and "@" in name and name not in SPACES:
        from mobile_nas.space.scaled import resolve_scaled_name

        return resolve_scaled_name(name)  # e.g. nasnet@n4-f32-r224 (cell spaces, resized)
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
    import mobile_nas.space.presets  # noqa: F401

    return SPACES.names(pattern)
