"""Errors that reach users. Every subclass of :class:`MobileNasError` is bad input:
the CLI prints its message on one line and exits with code 2."""

from __future__ import annotations

from collections.abc import Callable


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


class SettingError(MobileNasError, ValueError):
    """A setting (a parameter of a library call, alone or with others) that cannot be used.

    Fields: ``what``, the parameter at fault as the library names it (``"latency_target"``);
    ``value``, what it was given (None where leaving it out is the fault); ``allowed``, what
    would do (None where the reason says it); ``others``, the other parameters the reason
    names (a conflict, a dependency); ``details``, other values the reason shows;
    ``reason``, the sentence, a :meth:`str.format` template naming the parameters
    ``{what}``, ``{others[0]}``..., the values ``{value}``, ``{allowed}`` and the details by
    their names (never format user text into the template itself: pass it as a detail).
    ``str()`` names the parameters as the library does; :meth:`worded` as a caller does
    (the CLI: by its flags).
    """

    def __init__(self, what: str, reason: str, *, value: object = None,
                 allowed: str | None = None, others: tuple[str, ...] = (),
                 **details: object) -> None:
        self.what, self.reason, self.value = what, reason, value
        self.allowed, self.others, self.details = allowed, others, details
        super().__init__(self.worded())

    def worded(self, name: Callable[[str], str] = str) -> str:
        """The one-line message, each parameter called ``name(parameter)`` (also in a
        :class:`SettingError` among the details)."""
        details = {k: v.worded(name) if isinstance(v, SettingError) else v
                   for k, v in self.details.items()}
        return self.reason.format(what=name(self.what), value=self.value,
                                  allowed=self.allowed, others=[name(o) for o in self.others],
                                  **details)

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:  # pickles across processes with its fields
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[SettingError], args: tuple[object, ...],
             fields: dict[str, object]) -> SettingError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(fields)
    return exc


class OutOfRangeError(SettingError):
    """A value outside what the parameter takes: "``what`` must be ``allowed``, got
    ``value``"."""

    def __init__(self, what: str, value: object, allowed: str) -> None:
        super().__init__(what, "{what} must be {allowed}, got {value}", value=value,
                         allowed=allowed)
