"""Tabular benchmarks from CSV files: accuracy and latency looked up, nothing trained.

``mobile-nas search --evaluator table --accuracy-csv A.csv --latency-csv L.csv`` searches a
published benchmark (e.g. NAS-Bench-201 with device latencies from HW-NAS-Bench/HELP).
Accepted CSV layouts (header row required):

* ``arch,value`` — the project's form: an arch string of the space and a number;
* a column ``arch`` plus a named value column (``--accuracy-column``, e.g. NB201's
  ``index,arch,cifar10_test,cifar100_test,imagenet16_test``; default: the first column that
  is neither ``index`` nor ``arch``);
* ``index,<value>`` without an ``arch`` column (e.g. ``index,latency_ms``): indices are
  resolved through the ``index,arch`` pairs of the other CSV, or an ``archs.txt`` beside the
  file (line ``i`` = arch of index ``i``).

Arch strings are parsed by the space (so malformed ones fail with the row number).
Accuracies above 1 are read as percent (NB201 publishes percent) and divided by 100: the
:class:`~mobile_nas.search.evaluator.Evaluator` contract is a fraction in [0, 1].
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_nas.errors import ArchError, MobileNasError, SettingError
from mobile_nas.search.evaluator import EvaluatorError, TableEvaluator
from mobile_nas.space import get_space
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace

if TYPE_CHECKING:
    from mobile_nas.search.costs import LatencyFn


class TableFileError(EvaluatorError):
    """A tabular-benchmark CSV that cannot be read or does not fit the space."""


@dataclass(frozen=True)
class ValueColumn:
    """One column of a CSV as ``arch string → value`` (and the file's ``index → arch``)."""

    path: str
    column: str
    values: dict[str, float]
    index_to_arch: dict[int, str]


def read_value_csv(path: str | Path, space: SearchSpace, *, column: str | None = None,
                   index_to_arch: dict[int, str] | None = None) -> ValueColumn:
    """Reads one value column of a CSV (layouts in the module docstring).

    Raises :class:`TableFileError` naming the file, row and problem.
    """
    path = Path(path)
    try:
        with path.open(newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise TableFileError(f"cannot read {str(path)!r}: {exc}") from None
    if len(rows) < 2:
        raise TableFileError(f"{str(path)!r} has no data rows (a header row and one row per "
                             f"architecture are required)")
    header = [h.strip() for h in rows[0]]
    has_arch, has_index = "arch" in header, "index" in header
    if not has_arch and not has_index:
        raise TableFileError(f"{str(path)!r} needs an 'arch' or an 'index' column; header is "
                             f"{','.join(header)}")
    candidates = [h for h in header if h not in ("arch", "index")]
    if column is None:
        if not candidates:
            raise TableFileError(f"{str(path)!r} has no value column; header is "
                                 f"{','.join(header)}")
        column = candidates[0]
    elif column not in candidates:
        raise TableFileError(f"{str(path)!r} has no column {column!r}; value columns: "
                             f"{', '.join(candidates)}")
    if not has_arch:
        index_to_arch = index_to_arch or _archs_txt(path)
        if not index_to_arch:
            raise TableFileError(f"{str(path)!r} has indices but no 'arch' column, and no "
                                 f"index→arch map (give an accuracy CSV with index,arch or "
                                 f"put archs.txt beside it)")
    col = header.index(column)
    arch_col = header.index("arch") if has_arch else None
    index_col = header.index("index") if has_index else None
    values: dict[str, float] = {}
    mapping: dict[int, str] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise TableFileError(f"{str(path)!r} row {n}: {len(row)} fields, header has "
                                 f"{len(header)}")
        index = None
        if index_col is not None:
            try:
                index = int(row[index_col])
            except ValueError:
                raise TableFileError(f"{str(path)!r} row {n}: index {row[index_col]!r} is "
                                     f"not an integer") from None
        if arch_col is not None:
            text = row[arch_col].strip()
        else:
            if index_to_arch is None or index is None or index not in index_to_arch:
                raise TableFileError(f"{str(path)!r} row {n}: index {index} has no known "
                                     f"architecture")
            text = index_to_arch[index]
        try:
            key = space.decode(text).to_string()
        except ArchError as exc:
            raise TableFileError(f"{str(path)!r} row {n}: {exc}") from None
        try:
            value = float(row[col])
        except ValueError:
            raise TableFileError(f"{str(path)!r} row {n}: {column}={row[col]!r} is not a "
                                 f"number") from None
        if not math.isfinite(value):
            raise TableFileError(f"{str(path)!r} row {n}: {column}={row[col]!r} is not finite")
        if key in values and values[key] != value:
            raise TableFileError(f"{str(path)!r} row {n}: architecture {key!r} appears twice "
                                 f"with different values")
        values[key] = value
        if index is not None:
            mapping[index] = key
    return ValueColumn(str(path), column, values, mapping)


def _archs_txt(path: Path) -> dict[int, str]:
    archs = path.with_name("archs.txt")
    if not archs.is_file():
        return {}
    return dict(enumerate(archs.read_text().split()))


class TabularBenchmark:
    """Accuracy (fraction) and latency (ms) of architectures, from two CSV files.

    ``evaluator()`` is a :class:`~mobile_nas.search.evaluator.TableEvaluator` and
    ``latency_ms`` a latency function for :func:`mobile_nas.search.runner.run_search`.
    ``constrained_optimum(target_ms)`` is the exact best accuracy under a latency target,
    for regret. Immutable after construction.
    """

    def __init__(self, *, space: SearchSpace, accuracy: dict[str, float],
                 latency_ms: dict[str, float], source: str = "") -> None:
        missing = sorted(set(accuracy) - set(latency_ms))
        if missing:
            raise TableFileError(f"{len(missing)} architectures have an accuracy but no "
                                 f"latency (first: {missing[0]!r})")
        self.space = space
        self.accuracy = dict(accuracy)
        self.latency = {k: latency_ms[k] for k in accuracy}
        self.source = source

    @classmethod
    def from_csv(cls, *, space: SearchSpace, accuracy_csv: str | Path,
                 latency_csv: str | Path, accuracy_column: str | None = None,
                 latency_column: str | None = None) -> TabularBenchmark:
        acc = read_value_csv(accuracy_csv, space, column=accuracy_column)
        lat = read_value_csv(latency_csv, space, column=latency_column,
                             index_to_arch=acc.index_to_arch or None)
        if any(v < 0 for v in acc.values.values()):
            raise TableFileError(f"{acc.path!r}: accuracies must not be negative")
        percent = max(acc.values.values()) > 1.0
        if percent and max(acc.values.values()) > 100.0:
            raise TableFileError(f"{acc.path!r}: {acc.column} values above 100 are neither "
                                 f"fractions nor percent")
        scale = 0.01 if percent else 1.0
        if any(v <= 0 for v in lat.values.values()):
            raise TableFileError(f"{lat.path!r}: latencies must be positive milliseconds")
        return cls(space=space, accuracy={k: v * scale for k, v in acc.values.items()},
                   latency_ms=lat.values,
                   source=f"{acc.path}:{acc.column} + {lat.path}:{lat.column}")

    def __len__(self) -> int:
        return len(self.accuracy)

    def evaluator(self) -> TableEvaluator:
        return _CsvTableEvaluator(space=self.space, table=self.accuracy, source=self.source)

    def latency_ms(self, arch: Architecture) -> float:
        try:
            return self.latency[arch.to_string()]
        except KeyError:
            raise EvaluatorError(f"architecture {arch.to_string()!r} is not in the latency "
                                 f"table") from None

    def constrained_optimum(self, target_ms: float) -> tuple[str, float]:
        """The architecture of highest accuracy with latency ≤ ``target_ms``, and that
        accuracy; raises :class:`MobileNasError` if none meets the target."""
        feasible = [(a, k) for k, a in self.accuracy.items() if self.latency[k] <= target_ms]
        if not feasible:
            raise MobileNasError(f"no architecture meets the latency target {target_ms} ms")
        acc, key = max(feasible)
        return key, acc


class _CsvTableEvaluator(TableEvaluator):
    def __init__(self, *, space: SearchSpace, table: dict[str, float], source: str) -> None:
        super().__init__(space=space, table=table)
        self.source = source

    def describe(self) -> dict[str, Any]:
        return {"name": "table", "entries": len(self.table), "source": self.source}


def table_search_inputs(*, space: str, evaluator: str = "supernet",
                        accuracy_csv: str | None = None, latency_csv: str | None = None,
                        table: str | None = None, measure: bool = False,
                        precision: str = "fp32"
                        ) -> tuple[TableEvaluator | None, LatencyFn | None]:
    """The evaluator and latency function to pass to ``run_search`` for ``mobile-nas search
    --evaluator table --accuracy-csv A.csv [--latency-csv L.csv]`` (both None for another
    ``evaluator``). ``table`` and ``measure`` are the search's other latency sources, which
    ``latency_csv`` excludes, as it excludes a ``precision`` other than fp32 (the CSV's
    latencies are what they are). Raises :class:`~mobile_nas.errors.SettingError` for
    inconsistent options."""
    acc_csv, lat_csv = accuracy_csv, latency_csv
    if evaluator != "table":
        if acc_csv or lat_csv:
            raise SettingError("accuracy_csv", "{what} and {others[0]} need {others[1]} table",
                               value=acc_csv, others=("latency_csv", "evaluator"))
        return None, None
    if not acc_csv:
        raise SettingError("evaluator", "{what} {value} needs {others[0]} FILE",
                           value=evaluator, others=("accuracy_csv",))
    if lat_csv and (table or measure):
        raise SettingError("latency_csv", "pass one latency source: {what}, {others[0]} or "
                           "{others[1]}", value=lat_csv, others=("table", "measure"))
    if lat_csv and precision != "fp32":
        raise SettingError("precision", "{what} {value} selects the latency table or "
                           "measurement; {others[0]} latencies are taken as they are",
                           value=precision, others=("latency_csv",))
    search_space = get_space(space)
    if not lat_csv:
        acc = read_value_csv(acc_csv, search_space)
        scale = 0.01 if max(acc.values.values()) > 1.0 else 1.0
        return _CsvTableEvaluator(space=search_space, table={k: v * scale for k, v in
                                                             acc.values.items()},
                                  source=f"{acc.path}:{acc.column}"), None
    bench = TabularBenchmark.from_csv(space=search_space, accuracy_csv=acc_csv,
                                      latency_csv=lat_csv)
    return bench.evaluator(), bench.latency_ms
