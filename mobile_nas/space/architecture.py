"""Architecture: an immutable, hashable point of a search space."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_nas.errors import ArchError, SettingError
from mobile_nas.space.reference import BASELINE_ARCHS, REFERENCE_ARCHS
from mobile_nas.space.registry import canonical_space_name, get_space

if TYPE_CHECKING:
    from mobile_nas.space.base import SearchSpace


@dataclass(frozen=True)
class Architecture:
    """The ordered choices of one architecture of the space named ``space``.

    ``values[i]`` is the choice for ``get_space(space).decisions[i]``. Instances are immutable
    and hashable; use :meth:`to_string` / :meth:`from_string` for the compact, human-readable
    form and :meth:`to_json` / :meth:`from_json` for files.
    """

    space: str
    values: tuple[Any, ...]

    @property
    def search_space(self) -> SearchSpace:
        return get_space(self.space)

    def choices(self) -> dict[str, Any]:
        """Decision name → chosen value."""
        return {d.name: v for d, v in zip(self.search_space.decisions, self.values, strict=True)}

    def indices(self) -> tuple[int, ...]:
        """Index of each choice in its decision (what a controller emits)."""
        return tuple(
            d.index(v) for d, v in zip(self.search_space.decisions, self.values, strict=True)
        )

    def to_string(self) -> str:
        return self.search_space.encode(self)

    @classmethod
    def from_string(cls, text: str, space: str) -> Architecture:
        return get_space(space).decode(text)

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space, "arch": self.to_string(), "decisions": self.choices()}

    @classmethod
    def from_json(cls, data: Any, space: str | None = None) -> Architecture:
        """Reads ``{"space": ..., "arch": "..."}`` (extra keys such as metrics are ignored)."""
        if not isinstance(data, dict) or not isinstance(data.get("arch"), str):
            raise ArchError('architecture JSON must be an object with an "arch" string')
        name = data.get("space") or space
        if not isinstance(name, str):
            raise ArchError('architecture JSON names no "space" and none was given')
        if space is not None and data.get("space") not in (None, space):
            raise ArchError(f"architecture is from space {data['space']!r}, not {space!r}")
        return cls.from_string(data["arch"], name)

    def __str__(self) -> str:
        return self.to_string()


def load_arch(spec: str, space: str | None) -> Architecture:
    """Resolves what users pass as ARCH: a reference or baseline name, a JSON file, or an
    arch string."""
    if spec in REFERENCE_ARCHS or spec in BASELINE_ARCHS:
        ref = (REFERENCE_ARCHS if spec in REFERENCE_ARCHS else BASELINE_ARCHS).get(spec)
        if space is not None and space != ref.space:
            raise ArchError(f"reference architecture {spec!r} lives in space {ref.space!r}, "
                            f"not {space!r}")
        return Architecture.from_string(ref.arch, ref.space)
    path = Path(spec)
    if spec.endswith(".json") or (not _looks_like_arch(spec) and path.is_file()):
        if not path.is_file():
            raise ArchError(f"architecture file {spec!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ArchError(f"cannot read architecture JSON {spec!r}: {exc}") from None
        return Architecture.from_json(data, space)
    if space is None:
        raise SettingError("space", "an architecture string needs {what}", value=space)
    return Architecture.from_string(spec, space)


def load_arch_or_run(spec: str, space: str | None) -> Architecture:
    """ARCH as ``mobile-nas train`` takes it: what :func:`load_arch` reads, or a folder
    holding ``best.json`` (a search RUN_DIR); ``space`` in any spelling (a scaled space's
    canonical name is looked up). Raises :class:`ArchError` for a folder without
    ``best.json``."""
    path = Path(spec)
    try:
        is_dir = path.is_dir()
    except OSError:  # e.g. an arch string longer than a file name may be
        is_dir = False
    if is_dir:
        if not (path / "best.json").is_file():
            raise ArchError(f"folder {spec!r} has no best.json (expected a search RUN_DIR)")
        spec = str(path / "best.json")
    return load_arch(spec, canonical_space_name(space))


def _looks_like_arch(spec: str) -> bool:
    return "|" in spec or "_" in spec and "/" not in spec
