"""LatencyTable: per-layer latency statistics of one device, as versioned JSON.

File format (``schema_version`` 3)::

    {"schema_version": 3, "kind": "mobile-nas-latency-table", "space": "fmnist28",
     "metadata": {"device": ..., "cpu": ..., "os": ..., "onnxruntime": ..., "provider": ...,
                  "threads": 1, "precision": "fp32", "opset": 17, "clock": "wall",
                  "statistic": "median", "date": ..., "mobile_nas_version": ...,
                  "sentinel": {...}, ...},
     "calibration": {"model": "network", "weights": {"const": ..., "sum": ..., "sum:mb": ...},
                     "ridge": ..., "loo_mape": ..., "anchor_ms": 0.18, "retest_pct": ...,
                     "coefficients": 13, "target": {"clock": "wall", "statistic": "median"},
                     "archs": [...], "measured_ms": [...], "fit_mape": ..., "seed": 0,
                     "held_out": {"archs": [...], "measured_ms": [...],
                                  "predicted_ms": [...], "mape": ..., "within_5": ...,
                                  "within_10": ..., "n": ...}} | null,
     "entries": {"<LayerKey.id>": {"median_ms": 0.0123, "iqr_ms": 0.0004, "n": 100,
                                   "min_ms": 0.0117, "anchor_fraction": 0.069}, ...}}

``metadata.clock`` and ``metadata.statistic`` say how the layers were timed and which
per-entry statistic the predictor reads. Each entry's ``anchor_fraction`` is that statistic
over the anchor's (the sentinel, timed in the same chunk). The calibration (a per-op network
model, :mod:`.network_model`, fitted in anchor fractions when it has ``anchor_ms``; or the
linear form ``overhead_ms + scale * sum + per_layer_ms * n``) maps the entries to its
``target``, the end-to-end statistic users measure (:data:`~.statistic.WALL_MEDIAN`), and
records its check on ``held_out`` networks that the fit did not see.

Schema 2 has no anchor fractions and only the linear form; schema 1 (the tables shipped
before held-out checks) also loads: its calibration was fitted in sample, on the table's own
clock and statistic; it is marked ``legacy`` and predicts with a warning
(:mod:`.requirements`).

A table may hold ``passes``: other builds of the same layers on the same device with the same
protocol, each with its own entries and relative calibration (``"passes": [<table>, ...]``,
written by ``mobile-nas lut merge`` or ``lut build --passes``). A network is then predicted by
the median of every build's anchor fraction. On a 2-core VM the per-network errors of
separate builds were largely their own (the mean of three builds: scatter 3.9% around the
run's bias against 5.4% for one), and one build in six, made while the machine was
disturbed, was off by -12% on its own: the median keeps such a build from moving the
prediction (``benchmarks/results/latency_build_ensemble_intel*.md``).

Tables are immutable values: ``with_entries`` / ``with_calibration`` return new tables.
"""

from __future__ import annotations

import atexit
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import cached_property
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from mobile_nas.atomic import atomic_write_json
from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.network_model import FEATURE_SETS, apply_weights
from mobile_nas.cost.latency.statistic import (
    CLOCKS,
    STATISTICS,
    WALL_MEDIAN,
    LatencyStatistic,
)
from mobile_nas.errors import ArchError
from mobile_nas.space.layers import LayerKey

SCHEMA_VERSION = 3
#: Versions this release reads (1: legacy calibrations without a held-out check; 2: entries
#: and calibrations in milliseconds only, without anchor fractions).
READABLE_SCHEMA_VERSIONS = (1, 2, 3)
KIND = "mobile-nas-latency-table"
# Package data ``mobile_nas/latency_tables/``: in the repository a symlink to the top-level
# ``latency_tables/`` (the one source of the tables), in a wheel a copy of its JSON files.
_TABLES_PACKAGE, _TABLES_DIR = "mobile_nas", "latency_tables"
_extracted: dict[str, Path] = {}  # tables copied out of a zipped install, kept until exit
_extract_stack = ExitStack()
atexit.register(_extract_stack.close)


@dataclass(frozen=True)
class LayerLatency:
    """Robust statistics of one layer's timings: median and interquartile range (ms), count,
    and the fastest run (``min_ms``, the statistic most robust to a busy machine).

    ``anchor_fraction``: the entry's table statistic divided by the anchor's (the sentinel
    network timed interleaved in the same chunk), the unit in which a drifting machine's
    entries stay comparable (None in tables built before schema 3)."""

    median_ms: float
    iqr_ms: float
    n: int
    min_ms: float | None = None
    anchor_fraction: float | None = None

    def __post_init__(self) -> None:
        if not (_finite(self.median_ms) and self.median_ms > 0):
            raise ValueError(f"median_ms must be a positive finite number, got {self.median_ms!r}")
        if not (_finite(self.iqr_ms) and self.iqr_ms >= 0):
            raise ValueError(f"iqr_ms must be a finite number >= 0, got {self.iqr_ms!r}")
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ValueError(f"n must be a positive integer, got {self.n!r}")
        if self.min_ms is not None and not (_finite(self.min_ms) and self.min_ms > 0):
            raise ValueError(f"min_ms must be a positive finite number, got {self.min_ms!r}")
        if self.anchor_fraction is not None and not (_finite(self.anchor_fraction)
                                                     and self.anchor_fraction > 0):
            raise ValueError(f"anchor_fraction must be a positive finite number, got "
                             f"{self.anchor_fraction!r}")

    def value(self, statistic: str) -> float:
        """The entry's ``median`` or ``min`` time in ms."""
        if statistic == "median":
            return self.median_ms
        if statistic == "min" and self.min_ms is not None:
            return self.min_ms
        raise ValueError(f"entry has no {statistic!r} statistic")


@dataclass(frozen=True)
class HeldOutCheck:
    """How a calibration predicts networks it was not fitted on: each network's measured
    ``target`` statistic and prediction (ms), their mean absolute percentage error and the
    shares within ±5% and ±10%."""

    archs: tuple[str, ...]
    measured_ms: tuple[float, ...]
    predicted_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.archs or not (len(self.archs) == len(self.measured_ms)
                                  == len(self.predicted_ms)):
            raise ValueError("a held-out check needs one measured and one predicted time per "
                             "network, and at least one network")
        if not all(_finite(x) and x > 0 for x in self.measured_ms):
            raise ValueError("held-out measured times must be positive finite numbers")
        if not all(_finite(x) for x in self.predicted_ms):
            raise ValueError("held-out predictions must be finite numbers")

    @property
    def n(self) -> int:
        return len(self.archs)

    @property
    def errors_pct(self) -> tuple[float, ...]:
        return tuple((p - m) / m * 100 for p, m in zip(self.predicted_ms, self.measured_ms,
                                                        strict=True))

    @property
    def mape(self) -> float:
        return sum(abs(e) for e in self.errors_pct) / self.n

    @property
    def within_5(self) -> float:
        return sum(abs(e) <= 5 for e in self.errors_pct) / self.n

    @property
    def within_10(self) -> float:
        return sum(abs(e) <= 10 for e in self.errors_pct) / self.n

    def summary(self) -> str:
        """One line: ``held-out check on 6 networks: MAPE 3.10%, 83% within ±5%, ...``."""
        return (f"held-out check on {self.n} networks not used in the fit: MAPE "
                f"{self.mape:.2f}%, {self.within_5:.0%} within ±5%, {self.within_10:.0%} "
                f"within ±10%")

    def to_json(self) -> dict[str, Any]:
        return {"archs": list(self.archs), "measured_ms": list(self.measured_ms),
                "predicted_ms": list(self.predicted_ms), "n": self.n,
                "mape": round(self.mape, 3), "within_5": round(self.within_5, 4),
                "within_10": round(self.within_10, 4)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HeldOutCheck:
        return cls(archs=tuple(str(a) for a in data["archs"]),
                   measured_ms=tuple(float(x) for x in data["measured_ms"]),
                   predicted_ms=tuple(float(x) for x in data["predicted_ms"]))


@dataclass(frozen=True)
class Calibration:
    """End-to-end correction from a network's layer entries to its measured latency.

    Two forms. The network model (schema 3, ``weights`` set): per-op weights of
    :func:`~.network_model.network_features` fitted by :func:`~.network_model.fit_network_model`;
    with ``anchor_ms`` the features and the fit are in fractions of the anchor (entries'
    ``anchor_fraction``, networks timed interleaved with the anchor) and a prediction is a
    fraction of the anchor, in ms once multiplied by an anchor time (``anchor_ms``, the
    anchor as timed in the calibration run, or the anchor re-timed on the device at hand).
    The linear form (schema 2): ``overhead_ms + scale * sum_ms + per_layer_ms * L`` on ms.

    ``coefficients`` counts the fitted weights; ``archs`` are the fitted networks, whose
    measured end-to-end ``target`` statistic is ``measured_ms``; ``fit_mape`` the in-sample
    error (``loo_mape``: leave-one-out, network model only). ``held_out`` is the check on
    networks the fit did not see; a calibration without one is refused for prediction
    unless it is ``legacy`` (read from a schema-1 table). ``seed`` drew the random networks;
    ``retest_pct`` is how far the calibration run's repeats were from their median (%).
    ``features`` names the network model's feature set (:data:`~.network_model.FEATURE_SETS`);
    ``measured_lookup``: the fitted networks are predicted by their measurement (an option
    of :func:`~.calibrate.calibrate_table`, recorded so a table file predicts tomorrow what
    it predicted when it was written).
    """

    overhead_ms: float
    scale: float
    per_layer_ms: float
    archs: tuple[str, ...] = ()
    measured_ms: tuple[float, ...] = ()
    fit_mape: float = 0.0
    coefficients: int = 3
    target: LatencyStatistic = WALL_MEDIAN
    held_out: HeldOutCheck | None = None
    seed: int | None = None
    legacy: bool = False
    weights: Mapping[str, float] | None = None
    anchor_ms: float | None = None
    ridge: float | None = None
    loo_mape: float | None = None
    retest_pct: float | None = None
    features: str = "ops"
    measured_lookup: bool = False

    def apply(self, sum_ms: float, n_layers: int) -> float:
        """The linear form's prediction (ms) of a layer sum of ``n_layers`` layers."""
        if self.weights is not None:
            raise ValueError("a network-model calibration predicts from features "
                             "(predict_units), not from a layer sum")
        return self.overhead_ms + self.scale * sum_ms + self.per_layer_ms * n_layers

    @property
    def relative(self) -> bool:
        """Predictions are fractions of the anchor (``anchor_ms`` converts them to ms)."""
        return self.anchor_ms is not None

    def predict_units(self, per_layer: Sequence[tuple[LayerKey, float]]) -> float:
        """The prediction from the layers' values: in anchor fractions when
        :attr:`relative` (values must be anchor fractions), else in ms."""
        if self.weights is None:
            return self.apply(sum(v for _, v in per_layer), len(per_layer))
        return apply_weights(self.weights, FEATURE_SETS[self.features](per_layer))

    @property
    def residual_dof(self) -> int:
        """Fitted networks minus fitted coefficients."""
        return len(self.measured_ms) - self.coefficients

    def to_json(self) -> dict[str, Any]:
        return {"overhead_ms": self.overhead_ms, "scale": self.scale,
                "per_layer_ms": self.per_layer_ms, "coefficients": self.coefficients,
                "target": self.target.to_json(), "archs": list(self.archs),
                "measured_ms": list(self.measured_ms), "fit_mape": self.fit_mape,
                "seed": self.seed,
                "held_out": self.held_out.to_json() if self.held_out else None,
                **({"legacy": True} if self.legacy else {}),
                **({"model": "network", "features": self.features,
                    "weights": dict(self.weights), "ridge": self.ridge,
                    "loo_mape": self.loo_mape} if self.weights is not None else {}),
                **({"anchor_ms": self.anchor_ms} if self.anchor_ms is not None else {}),
                **({"retest_pct": self.retest_pct} if self.retest_pct is not None else {}),
                **({"measured_lookup": True} if self.measured_lookup else {})}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, legacy_target: LatencyStatistic | None = None
                  ) -> Calibration:
        """``legacy_target``: read a schema-1 calibration, fitted in sample on that
        statistic (the table's own clock and statistic)."""
        legacy = legacy_target is not None or bool(data.get("legacy", False))
        per_layer = float(data.get("per_layer_ms", 0.0))
        held = data.get("held_out")
        seed = data.get("seed")
        c = cls(overhead_ms=float(data["overhead_ms"]), scale=float(data["scale"]),
                per_layer_ms=per_layer,
                archs=tuple(data.get("archs", ())),
                measured_ms=tuple(float(x) for x in data.get("measured_ms", ())),
                fit_mape=float(data.get("fit_mape", 0.0)),
                coefficients=int(data.get("coefficients", 3 if per_layer else 2)),
                target=legacy_target or LatencyStatistic.from_json(data.get("target") or {}),
                held_out=HeldOutCheck.from_json(held) if held else None,
                seed=None if seed is None else int(seed), legacy=legacy,
                weights=({str(k): float(v) for k, v in data["weights"].items()}
                         if data.get("weights") is not None else None),
                anchor_ms=None if data.get("anchor_ms") is None else float(data["anchor_ms"]),
                ridge=None if data.get("ridge") is None else float(data["ridge"]),
                loo_mape=None if data.get("loo_mape") is None else float(data["loo_mape"]),
                retest_pct=None if data.get("retest_pct") is None
                else float(data["retest_pct"]),
                features=str(data.get("features", "ops")),
                measured_lookup=bool(data.get("measured_lookup", False)))
        values = (c.overhead_ms, c.scale, c.per_layer_ms, *(c.weights or {}).values())
        if not all(_finite(x) for x in values):
            raise ValueError("calibration coefficients must be finite")
        if c.anchor_ms is not None and not c.anchor_ms > 0:
            raise ValueError(f"anchor_ms must be positive, got {c.anchor_ms!r}")
        if c.features not in FEATURE_SETS:
            raise ValueError(f"unknown network-model features {c.features!r} "
                             f"(known: {', '.join(FEATURE_SETS)})")
        return c


@dataclass(frozen=True)
class LatencyTable:
    """Per-layer latencies (keyed by :attr:`LayerKey.id`) of one space on one device."""

    space: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    entries: Mapping[str, LayerLatency] = field(default_factory=dict)
    calibration: Calibration | None = None
    #: Other builds averaged with this one (see module); they share this table's entry keys.
    passes: tuple[LatencyTable, ...] = ()

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def statistic(self) -> str:
        """Which per-entry statistic predicts (``median`` or ``min``; metadata ``statistic``)."""
        return str(self.metadata.get("statistic", "median"))

    @property
    def layer_statistic(self) -> LatencyStatistic:
        """How the layers were timed and summarized (metadata ``clock`` and ``statistic``)."""
        return LatencyStatistic(str(self.metadata.get("clock", "wall")), self.statistic)

    @property
    def precision(self) -> str:
        """``fp32`` (every table before precisions were recorded) or ``int8``."""
        return str(self.metadata.get("precision", "fp32"))

    @property
    def prediction_statistic(self) -> LatencyStatistic:
        """The end-to-end statistic predictions estimate, and measurements compared with
        them take: the calibration's target, else (a plain layer sum) the layer statistic."""
        return self.calibration.target if self.calibration is not None \
            else self.layer_statistic

    @cached_property
    def anchor_timebase_ms(self) -> float | None:
        """Milliseconds per anchor fraction of the entries (the median over entries that
        have a fraction): converts an entry added without one (e.g. by on-demand
        profiling, scaled to the table's timebase) to a fraction. None without fractions."""
        stat = self.statistic
        ratios = sorted(e.value(stat) / e.anchor_fraction for e in self.entries.values()
                        if e.anchor_fraction)
        return ratios[len(ratios) // 2] if ratios else None

    def anchor_fraction(self, key_id: str) -> float:
        """The entry's fraction of the anchor (see :attr:`anchor_timebase_ms`); raises
        :class:`LatencyTableError` for a table without anchor data."""
        e = self.entries[key_id]
        if e.anchor_fraction is not None:
            return e.anchor_fraction
        base = self.anchor_timebase_ms
        if base is None:
            raise LatencyTableError("the table has no anchor timings (built before schema 3); "
                                    "rebuild it with 'mobile-nas lut build'")
        return e.value(self.statistic) / base

    @property
    def predicts(self) -> str:
        """The name of what predictions are: the calibration's target statistic (e.g.
        ``"wall-clock median"``), or for an uncalibrated table the plain layer sum."""
        if self.calibration is not None:
            return self.calibration.target.name
        return f"uncalibrated sum of layer {self.layer_statistic.name}s"

    def __contains__(self, key: LayerKey | str) -> bool:
        return _id(key) in self.entries

    def get(self, key: LayerKey | str) -> LayerLatency | None:
        return self.entries.get(_id(key))

    def missing(self, keys: Iterable[LayerKey | str]) -> list[str]:
        """Ids of ``keys`` without an entry, in order, without duplicates."""
        return list(dict.fromkeys(_id(k) for k in keys if _id(k) not in self.entries))

    def with_entries(self, entries: Mapping[str, LayerLatency]) -> LatencyTable:
        """Adds or replaces ``entries``; in every pass too (one timing serves them all)."""
        return LatencyTable(space=self.space, metadata=dict(self.metadata),
                            entries={**self.entries, **entries}, calibration=self.calibration,
                            passes=tuple(p.with_entries(entries) for p in self.passes))

    def with_metadata(self, **metadata: Any) -> LatencyTable:
        return LatencyTable(space=self.space, metadata={**self.metadata, **metadata},
                            entries=dict(self.entries), calibration=self.calibration,
                            passes=self.passes)

    def with_calibration(self, calibration: Calibration | None) -> LatencyTable:
        """This build's calibration replaced (the passes keep theirs; without one, a table
        cannot average passes, so they are dropped)."""
        return LatencyTable(space=self.space, metadata=dict(self.metadata),
                            entries=dict(self.entries), calibration=calibration,
                            passes=self.passes if calibration is not None else ())

    def with_passes(self, others: Sequence[LatencyTable]) -> LatencyTable:
        """This table with ``others`` (and their own passes) as further passes. Every build
        must be of this space, on this CPU, with this protocol (:data:`PASS_FIELDS`), have a
        relative calibration and the same entry keys; else :class:`LatencyTableError`."""
        builds = [b for o in others for b in (o.with_passes_removed(), *o.passes)]
        for i, b in enumerate([self.with_passes_removed(), *builds]):
            what = "the first table" if i == 0 else f"pass {i + 1}"
            cal = b.calibration
            if cal is None or not cal.relative or cal.weights is None:
                raise LatencyTableError(f"{what} has no relative network-model calibration "
                                        f"(only tables built by 'mobile-nas lut build' of this "
                                        f"release average as passes)")
            if i == 0:
                continue
            if b.space != self.space:
                raise LatencyTableError(f"{what} is for space {b.space!r}, not {self.space!r}")
            for f in PASS_FIELDS:
                if b.metadata.get(f) != self.metadata.get(f):
                    raise LatencyTableError(f"{what} has {f} {b.metadata.get(f)!r}, the first "
                                            f"table {self.metadata.get(f)!r}: passes must be "
                                            f"timed on one device with one protocol")
            if set(b.entries) != set(self.entries):
                diff = len(set(b.entries) ^ set(self.entries))
                raise LatencyTableError(f"{what} differs from the first table in {diff} layer "
                                        f"keys; build every pass with the same --space/--arch")
        return LatencyTable(space=self.space, metadata=dict(self.metadata),
                            entries=dict(self.entries), calibration=self.calibration,
                            passes=(*self.passes, *builds))

    def with_passes_removed(self) -> LatencyTable:
        """This build alone."""
        return LatencyTable(space=self.space, metadata=dict(self.metadata),
                            entries=dict(self.entries), calibration=self.calibration)

    # -- JSON ------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "kind": KIND, "space": self.space,
            "metadata": dict(self.metadata),
            "calibration": self.calibration.to_json() if self.calibration else None,
            "entries": {k: {f: x for f, x in asdict(v).items() if x is not None}
                        for k, v in sorted(self.entries.items())},
        } | ({"passes": [p.to_json() for p in self.passes]} if self.passes else {})

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the table atomically (a reader never sees a half-written file)."""
        atomic_write_json(path, self.to_json(), indent=1)

    @classmethod
    def from_json(cls, data: Any, *, source: str = "table") -> LatencyTable:
        if not isinstance(data, dict):
            raise LatencyTableError(f"{source}: expected a JSON object, got "
                                    f"{type(data).__name__}")
        version = data.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS:
            raise LatencyTableError(f"{source}: unsupported schema_version {version!r} (this "
                                    f"mobile-nas reads "
                                    f"{', '.join(map(str, READABLE_SCHEMA_VERSIONS))})")
        if data.get("kind", KIND) != KIND:
            raise LatencyTableError(f"{source}: kind {data.get('kind')!r} is not a latency "
                                    f"table (a device results file goes through 'lut import')")
        if not isinstance(data.get("space"), str) or not isinstance(data.get("entries"), dict):
            raise LatencyTableError(f"{source}: needs a 'space' name and an 'entries' object")
        entries = {}
        for key_id, stats in data["entries"].items():
            try:
                LayerKey.from_id(key_id)
                mn, frac = stats.get("min_ms"), stats.get("anchor_fraction")
                entries[key_id] = LayerLatency(
                    median_ms=float(stats["median_ms"]), iqr_ms=float(stats["iqr_ms"]),
                    n=stats["n"], min_ms=None if mn is None else float(mn),
                    anchor_fraction=None if frac is None else float(frac))
            except (ArchError, ValueError, TypeError, KeyError) as exc:
                raise LatencyTableError(f"{source}: bad entry {key_id!r}: {exc}") from None
        table = cls(space=data["space"], metadata=dict(data.get("metadata") or {}),
                    entries=entries)
        if table.statistic not in STATISTICS:
            raise LatencyTableError(f"{source}: unknown statistic {table.statistic!r}; "
                                    f"known: {', '.join(STATISTICS)}")
        if table.metadata.get("clock", "wall") not in CLOCKS:
            raise LatencyTableError(f"{source}: unknown clock {table.metadata['clock']!r}; "
                                    f"known: {', '.join(CLOCKS)}")
        try:
            cal = data.get("calibration")
            legacy = table.layer_statistic if version == 1 else None
            calibration = Calibration.from_json(cal, legacy_target=legacy) if cal else None
        except (ValueError, TypeError, KeyError) as exc:
            raise LatencyTableError(f"{source}: bad calibration: {exc}") from None
        table = table.with_calibration(calibration)
        if table.statistic == "min" and any(e.min_ms is None for e in entries.values()):
            raise LatencyTableError(f"{source}: statistic 'min' but some entries lack min_ms")
        passes = data.get("passes") or []
        if not isinstance(passes, list) or any(isinstance(p, dict) and p.get("passes")
                                               for p in passes):
            raise LatencyTableError(f"{source}: 'passes' must be a list of tables without "
                                    f"passes of their own")
        if passes:
            try:
                table = table.with_passes([cls.from_json(p, source=f"{source} pass {i + 2}")
                                           for i, p in enumerate(passes)])
            except LatencyTableError as exc:
                raise LatencyTableError(f"{source}: {exc}") from None
        return table

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LatencyTable:
        """Reads a table; raises :class:`LatencyTableError` naming the file if it is missing,
        truncated, corrupt or of another schema version."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise LatencyTableError(f"cannot read latency table {path}: "
                                    f"{exc.strerror or exc}") from None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LatencyTableError(f"{path} is not valid JSON (corrupt or truncated "
                                    f"table?): {exc}") from None
        return cls.from_json(data, source=str(path))


#: Metadata that every pass of a table shares: the device and the timing protocol.
PASS_FIELDS = ("cpu", "device", "onnxruntime", "provider", "threads", "opt_level", "opset",
               "clock", "statistic", "precision")


def shipped_table_name(space_name: str, precision: str = "fp32") -> str:
    """The file name of a shipped table: ``<space>.json`` (fp32), ``<space>_int8.json``."""
    return f"{space_name}.json" if precision == "fp32" else f"{space_name}_{precision}.json"


def shipped_table_path(space_name: str, precision: str = "fp32") -> Path | None:
    """The table shipped for ``space_name`` at ``precision`` (package data
    ``mobile_nas/latency_tables/``, :func:`shipped_table_name`, read through
    :mod:`importlib.resources`) as a real file, or None."""
    name = shipped_table_name(space_name, precision)
    resource = files(_TABLES_PACKAGE).joinpath(_TABLES_DIR).joinpath(name)
    if not resource.is_file():
        return None
    if isinstance(resource, Path):
        return resource.resolve()  # in a checkout: latency_tables/<space>.json, as before
    if name not in _extracted:  # not on the file system (zip import): a temporary copy
        _extracted[name] = _extract_stack.enter_context(as_file(resource))
    return _extracted[name]


def _id(key: LayerKey | str) -> str:
    return key if isinstance(key, str) else key.id


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
