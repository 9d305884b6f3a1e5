"""Whether a table may predict what is asked of it, and the command that fixes it if not.

A table predicts only when its calibration was judged on networks the fit did not see
(``calibration.held_out``) and when it was built for the precision, intra-op threads and
execution provider a caller requests (:class:`TableRequest`). Otherwise
:func:`ensure_usable` raises one line naming the mismatch and the ``mobile-nas lut build``
command that fixes it. Calibrations read from schema-1 tables (before held-out checks) are
``legacy``: accepted with one warning per table, naming the rebuild command.
"""

from __future__ import annotations

import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_nas.cost.latency.errors import (
    LatencyTableError,
    TableMismatchError,
    UncheckedCalibrationError,
)
from mobile_nas.cost.latency.settings import DEFAULTS, PRECISIONS, RESUME_FIELDS
from mobile_nas.cost.latency.table import LatencyTable, shipped_table_path

_log = logging.getLogger("mobile_nas.cost.latency")
_warned: set[str] = set()


@dataclass(frozen=True)
class TableRequest:
    """What a caller needs a table for; ``None`` accepts whatever the table has."""

    precision: str | None = None
    threads: int | None = None
    provider: str | None = None

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise LatencyTableError(f"unknown precision {self.precision!r}; known: "
                                    f"{', '.join(PRECISIONS)}")
        if self.threads is not None and self.threads < 1:
            raise LatencyTableError(f"threads must be >= 1, got {self.threads}")


def table_settings(table: LatencyTable) -> dict[str, Any]:
    """The table's protocol fields (:data:`~.settings.RESUME_FIELDS`), defaults filled in."""
    return {f: table.metadata.get(f, getattr(DEFAULTS, f)) for f in RESUME_FIELDS}


def mismatches(table: LatencyTable, request: TableRequest) -> list[tuple[str, object, object]]:
    """``(field, table's value, requested value)`` for every requested field that differs."""
    have = table_settings(table)
    out = []
    for field in ("precision", "threads", "provider"):
        want = getattr(request, field)
        if want is not None and have[field] != want:
            out.append((field, have[field], want))
    return out


def lut_build_command(table: LatencyTable, path: str | os.PathLike[str] | None, *,
                      request: TableRequest | None = None) -> str:
    """The ``mobile-nas lut build`` command that fixes ``table``.

    With a ``request`` the table does not meet: a new table with the requested settings
    (next to ``path``; in the current folder when ``path`` is a shipped table). Without:
    ``--resume`` on ``path`` with the table's own protocol, which keeps its entries and
    refits its calibration with a held-out check (for a table restricted with ``--arch``, one
    of its architectures keeps the restriction)."""
    settings = table_settings(table)
    parts = ["mobile-nas", "lut", "build", "--space", table.space]
    restricted = list(table.metadata.get("restricted_to_archs") or ())
    sampled = set((table.metadata.get("calibration_sample") or {}).get("archs") or ())
    own = [a for a in restricted if a not in sampled] or restricted
    path = Path(path) if path else Path(f"{table.space}.json")
    if request is not None:
        wanted = {**settings, **{f: w for f, _, w in mismatches(table, request)}}
        for a in own[:3]:
            parts += ["--arch", a]
        tags = [f"{f}{w}" for f, _, w in mismatches(table, request)]
        if any(p is not None and path.resolve() == Path(p).resolve()
               for p in (shipped_table_path(table.space, x) for x in PRECISIONS)):
            path = Path(path.name)  # not into the installed package
        out = path.with_name(f"{path.stem}.{'-'.join(tags) or 'rebuilt'}.json")
    else:
        wanted = settings
        parts += ["--arch", own[0]] if own else []
        out = path
    for field in ("threads", "provider", "precision", "opt_level", "clock", "statistic",
                  "rounds", "runs_per_round"):
        if request is not None and field in ("clock", "statistic", "rounds", "runs_per_round",
                                             "opt_level"):
            continue  # a new table: the default protocol
        if wanted[field] != getattr(DEFAULTS, field):
            parts += [f"--{field.replace('_', '-')}", str(wanted[field])]
    parts += ["--out", str(out)]
    if request is None:
        parts.append("--resume")
    return shlex.join(parts)


def ensure_usable(table: LatencyTable, *, path: str | os.PathLike[str] | None = None,
                  request: TableRequest | None = None) -> None:
    """Raises :class:`TableMismatchError` if ``table`` was built for another precision,
    thread count or provider than ``request`` asks, :class:`UncheckedCalibrationError` if its
    calibration has no held-out check; logs one warning per table for a legacy calibration.
    An uncalibrated table (a plain layer sum, named so in every prediction) passes."""
    shown = f"latency table {path}" if path else "the latency table"
    if request is not None:
        bad = mismatches(table, request)
        if bad:
            have = ", ".join(f"{f} {h}" for f, h, _ in bad)
            want = ", ".join(f"{f} {w}" for f, _, w in bad)
            raise TableMismatchError(
                f"{shown} was built for {have}, not the requested {want}; "
                f"build one with: {lut_build_command(table, path, request=request)}",
                tuple(bad))
    cal = table.calibration
    if cal is None or cal.held_out is not None:
        return
    if not cal.legacy:
        raise UncheckedCalibrationError(
            f"{shown} has a calibration fitted on {len(cal.archs)} networks "
            f"without a held-out check (a fit can match its own noise); recalibrate it "
            f"with: {lut_build_command(table, path)}")
    key = str(Path(path).resolve()) if path else f"id:{id(table)}"
    if key not in _warned:
        _warned.add(key)
        _log.warning(
            f"mobile-nas: warning: {shown} has a legacy calibration (schema 1): "
            f"fitted in sample on {len(cal.archs)} networks (fit MAPE {cal.fit_mape:.2f}%), "
            f"no held-out check, and it predicts the {cal.target.name}; rebuild it with: "
            f"{lut_build_command(table, path)}")
