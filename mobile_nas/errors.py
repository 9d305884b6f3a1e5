"""Errors that reach users. Every subclass of :class:`MobileNasError` is bad input:
the CLI prints its message on one line and exits with code 2."""


class MobileNasError(Exception):
    """Base class of user-facing errors (bad input, missing files, unreachable targets)."""


class ArchError(MobileNasError, ValueError):
    """A malformed architecture string/JSON, or a choice outside the search space."""


class SpaceError(MobileNasError, KeyError):
    """An unknown search space or reference architecture name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RegistryError(MobileNasError, KeyError):
    """A duplicate registration or an unknown name in a registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""
