"""The errors of the train package."""

from __future__ import annotations

from mobile_nas.errors import MobileNasError


class DatasetError(MobileNasError):
    """A dataset that cannot be found or read."""
