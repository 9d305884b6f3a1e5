"""The search's error type (its own module so that the runner and the evaluator registry
share it without importing each other)."""

from __future__ import annotations

from mobile_nas.errors import MobileNasError, SettingError


class SearchError(MobileNasError):
    """A search that cannot start: bad settings, an unreachable storage, a study mismatch."""


class SearchSettingError(SettingError, SearchError):
    """A search setting that cannot be used: the fields of
    :class:`~mobile_nas.errors.SettingError`, caught as a :class:`SearchError`."""
