"""Errors of the export stage."""

from mobile_nas.errors import MobileNasError


class ExportError(MobileNasError):
    """An export that cannot be written or does not verify."""
