"""One factorized choice of a search space."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mobile_nas.errors import ArchError


@dataclass(frozen=True)
class Decision:
    """A named choice among a fixed, ordered tuple of values.

    Strategies only ever see decisions: a controller emits one index per decision.
    """

    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ValueError(f"decision {self.name!r} has no choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError(f"decision {self.name!r} has duplicate choices {self.choices}")

    def __len__(self) -> int:
        return len(self.choices)

    def index(self, value: Any) -> int:
        """Position of ``value`` among the choices; raises :class:`ArchError` if absent."""
        try:
            return self.choices.index(value)
        except ValueError:
            allowed = ", ".join(str(c) for c in self.choices)
            raise ArchError(f"{self.name}={value!r} is not allowed; allowed: {allowed}") from None
