"""Errors of the latency package (all user-facing :class:`MobileNasError`)."""

from __future__ import annotations

from collections.abc import Sequence

from mobile_nas.errors import MobileNasError, SettingError


class LatencyTableError(MobileNasError, ValueError):
    """A latency table that cannot be read: missing, corrupt, truncated or wrong schema."""


class TableSettingError(SettingError, LatencyTableError):
    """A latency table that does not serve a setting as given: the fields of
    :class:`~mobile_nas.errors.SettingError`, caught as a :class:`LatencyTableError`."""


class BundleError(MobileNasError, ValueError):
    """A bundle or device results file that is unsafe or does not match its manifest."""


class MeasureError(MobileNasError, ValueError):
    """A file that onnxruntime cannot load or run, or bad timing settings."""


class MissingEntryError(MobileNasError, KeyError):
    """An architecture contains layers the table has not profiled.

    ``missing`` holds the :class:`~mobile_nas.space.LayerKey` ids; the message names them and
    the ``mobile-nas lut build`` command that fills them.
    """

    def __init__(self, missing: Sequence[str], *, space: str, arch: str | None = None,
                 table: str | None = None) -> None:
        self.missing = list(missing)
        self.space = space
        shown = ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else "")
        cmd = f"mobile-nas lut build --space {space}"
        if arch:
            cmd += f" --arch '{arch}'"
        cmd += f" --out {table or 'TABLE.json'} --resume"
        super().__init__(f"latency table lacks {len(self.missing)} layer(s) of this "
                         f"architecture: {shown}; profile them with: {cmd}")

    def __str__(self) -> str:
        return str(self.args[0])


class TableMismatchError(LatencyTableError):
    """A table built for another precision, thread count or execution provider than the one
    requested; the message names the mismatch and the ``lut build`` command that fixes it,
    ``mismatches`` holds ``(field, the table's value, the requested value)``."""

    def __init__(self, message: str,
                 mismatches: tuple[tuple[str, object, object], ...] = ()) -> None:
        super().__init__(message)
        self.mismatches = mismatches


class UncheckedCalibrationError(LatencyTableError):
    """A table whose calibration has no held-out check (it could fit its own noise); the
    message names the ``lut build`` command that recalibrates it."""


class LatencyTargetError(MobileNasError, ValueError):
    """A latency target (``REF`` or ``<factor>xREF``) that cannot be read or resolved.

    Fields: ``text`` (the target as given), ``what`` (the part at fault: ``factor``,
    ``reference``, ``ONNX file``), ``value`` (that part), ``problem`` and ``allowed`` (what
    would do). The message words them; a command words them with its flag
    (:meth:`worded`). ``setting`` is the parameter the target was given as (the CLI names
    its flag).
    """

    setting = "latency_target"

    def __init__(self, *, text: str, what: str, value: object, problem: str,
                 allowed: str) -> None:
        self.text, self.what, self.value = text, what, value
        self.problem, self.allowed = problem, allowed
        super().__init__(self.worded("latency target"))

    def worded(self, subject: str) -> str:
        """The one-line message, starting with ``subject`` (e.g. a command's flag)."""
        return (f"{subject} {self.text!r}: {self.what} {self.value!r} {self.problem}; "
                f"allowed: {self.allowed}")

    def __str__(self) -> str:
        return str(self.args[0])
