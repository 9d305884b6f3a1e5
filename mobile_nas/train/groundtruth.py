"""Stand-alone ground truth: architectures trained alone with one recorded recipe.

A ground-truth set is two files side by side: ``NAME.json`` (the header: space, recipe and its
id, seeds, machine, torch version, the command that rebuilds it) and ``NAME.csv`` (one row per
finished training run: arch, seed, recipe id, validation and test accuracy, costs). It is the
yardstick every accuracy evaluator is measured against (see :mod:`mobile_nas.search.fidelity`).

Rows are appended under a file lock by rewriting the CSV atomically, so any number of builder
processes can share one set, a killed builder loses at most the run in progress, and a reader
never sees a torn file. :func:`load_ground_truth` refuses a truncated or edited file, one of
another space, and one of another recipe than the caller asks for.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.cost.model_costs import model_costs
from mobile_nas.errors import MobileNasError
from mobile_nas.locking import exclusive_lock, lock_file_for
from mobile_nas.models import build_model
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.train.trainer import evaluate_accuracy, train_model

GROUND_TRUTH_SCHEMA = 1


class GroundTruthError(MobileNasError):
    """A ground-truth file that is missing, truncated, edited, or of another space/recipe."""


@dataclass(frozen=True)
class Recipe:
    """The one training recipe of a ground-truth set (see :func:`train_model`)."""

    epochs: int = 1
    train_images: int | None = None  # None: the whole training split
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 4e-5
    label_smoothing: float = 0.1
    warmup_epochs: float = 0.3
    augmentation: str = "2-pixel shifts + horizontal flips"
    dataset: str = "fashion-mnist"
    split_seed: int = 0  # the train/validation split (the one `search --seed 0` uses)
    val_images: int = 5000

    @property
    def recipe_id(self) -> str:
        """A short, stable hash of every field: rows of different recipes never mix."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def train_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :func:`mobile_nas.train.trainer.train_model`."""
        return {"epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr,
                "optimizer": self.optimizer, "weight_decay": self.weight_decay,
                "label_smoothing": self.label_smoothing, "warmup_epochs": self.warmup_epochs,
                "train_subset": self.train_images}


@dataclass(frozen=True)
class GroundTruthRow:
    """One finished stand-alone training run. Accuracies are fractions in [0, 1]."""

    arch: str
    role: str  # how the arch was chosen: "bin3", "reference:NAME", "smallest", "largest"
    seed: int
    recipe_id: str
    val_accuracy: float
    test_accuracy: float
    train_loss: float
    macs: int
    params: int
    predicted_ms: float
    train_seconds: float
    load_average: float
    finished_at: str


_COLUMNS = [f.name for f in fields(GroundTruthRow)]
_FLOATS = {"val_accuracy", "test_accuracy", "train_loss", "predicted_ms", "train_seconds",
           "load_average"}
_INTS = {"seed", "macs", "params"}


@dataclass(frozen=True)
class GroundTruth:
    """A loaded ground-truth set: its header and rows, with per-architecture views."""

    path: Path
    header: dict[str, Any]
    rows: tuple[GroundTruthRow, ...]

    @property
    def recipe(self) -> Recipe:
        return Recipe(**self.header["recipe"])

    def seeds_of(self, arch: str) -> dict[int, GroundTruthRow]:
        return {r.seed: r for r in self.rows if r.arch == arch}

    def archs(self) -> list[str]:
        """Distinct architectures in first-finished order."""
        return list(dict.fromkeys(r.arch for r in self.rows))

    def mean_val_accuracy(self) -> dict[str, float]:
        """Validation accuracy per architecture, averaged over its seeds."""
        out: dict[str, list[float]] = {}
        for r in self.rows:
            out.setdefault(r.arch, []).append(r.val_accuracy)
        return {a: sum(v) / len(v) for a, v in out.items()}

    def seed_pairs(self, first: int = 0, second: int = 1) -> list[tuple[GroundTruthRow,
                                                                         GroundTruthRow]]:
        """(seed ``first``, seed ``second``) rows of every architecture trained with both."""
        pairs = []
        for arch in self.archs():
            runs = self.seeds_of(arch)
            if first in runs and second in runs:
                pairs.append((runs[first], runs[second]))
        return pairs


def paths_of(stem: str | os.PathLike) -> tuple[Path, Path]:
    """(header JSON, rows CSV) of a ground-truth set named by either file or their stem."""
    stem = Path(stem)
    if stem.suffix in (".csv", ".json"):
        stem = stem.with_suffix("")
    return stem.with_suffix(".json"), stem.with_suffix(".csv")


def write_header(stem: str | os.PathLike, header: dict[str, Any]) -> None:
    """Writes the header, or checks that an existing one has the same space and recipe.

    A build of the same set with another ``selection`` (e.g. a second draw with another
    seed) adds it to the existing header's ``more_selections``, once."""
    header_path, _ = paths_of(stem)
    if header_path.exists():
        old = _read_header(header_path)
        for key in ("space", "recipe_id"):
            if old.get(key) != header.get(key):
                raise GroundTruthError(
                    f"{header_path} holds {key} {old.get(key)!r}, not {header.get(key)!r}: "
                    f"a resumed build never mixes recipes; use another --out")
        selection, more = header.get("selection"), old.get("more_selections", [])
        known = [old.get("selection"), *(m.get("selection") for m in more)]
        if selection is not None and selection not in known:
            added = {"selection": selection, "command": header.get("command"),
                     "created": header.get("created")}
            atomic_write_json(header_path, {**old, "more_selections": [*more, added]})
        return
    atomic_write_json(header_path, {"schema_version": GROUND_TRUTH_SCHEMA, **header})


def _locked(path: Path) -> contextlib.AbstractContextManager[None]:
    return exclusive_lock(lock_file_for(path))


def append_row(stem: str | os.PathLike, row: GroundTruthRow) -> bool:
    """Adds ``row`` unless that (arch, seed) is already there; returns whether it was added.

    The CSV is rewritten atomically under an exclusive lock (concurrent builders are safe).
    """
    _, csv_path = paths_of(stem)
    with _locked(csv_path):
        existing = _read_rows(csv_path) if csv_path.exists() else []
        if any(r.arch == row.arch and r.seed == row.seed for r in existing):
            return False
        _write_rows(csv_path, [*existing, row])
    return True


def _write_rows(csv_path: Path, rows: list[GroundTruthRow]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow(_format(r))
    atomic_write_text(csv_path, buf.getvalue())


def repredict(stem: str | os.PathLike, predict_ms: Callable[[str], float], *,
              table: dict[str, Any]) -> int:
    """Recomputes every row's ``predicted_ms`` with ``predict_ms(arch string)`` (a new latency
    table; nothing is retrained) and records ``table`` (what predicted: path, digest, date)
    in the header's ``predicted_ms_from``; returns the number of rows. The selection (the
    latency bins the architectures were drawn from) stays what the header says it was."""
    header_path, csv_path = paths_of(stem)
    header = _read_header(header_path)
    with _locked(csv_path):
        rows = _read_rows(csv_path)
        cache: dict[str, float] = {}
        for r in rows:
            if r.arch not in cache:
                cache[r.arch] = predict_ms(r.arch)
        new = [dataclasses.replace(r, predicted_ms=cache[r.arch]) for r in rows]
        _write_rows(csv_path, new)
    atomic_write_json(header_path, {**header, "predicted_ms_from": table})
    return len(new)


def done_runs(stem: str | os.PathLike) -> set[tuple[str, int]]:
    """(arch, seed) pairs already in the set (empty when it does not exist yet)."""
    _, csv_path = paths_of(stem)
    if not csv_path.exists():
        return set()
    return {(r.arch, r.seed) for r in _read_rows(csv_path)}


def load_ground_truth(stem: str | os.PathLike, space: SearchSpace | None = None, *,
                      recipe: Recipe | None = None) -> GroundTruth:
    """Reads and checks a ground-truth set. Raises :class:`GroundTruthError` when it is missing,
    truncated, edited, of another space than ``space`` or of another recipe than ``recipe``."""
    header_path, csv_path = paths_of(stem)
    header = _read_header(header_path)
    if space is not None and header.get("space") != space.name:
        raise GroundTruthError(f"{header_path} is ground truth for space "
                               f"{header.get('space')!r}, not {space.name!r}")
    try:
        stored = Recipe(**header["recipe"])
    except (KeyError, TypeError) as exc:
        raise GroundTruthError(f"{header_path} has no valid recipe ({exc})") from None
    if stored.recipe_id != header.get("recipe_id"):
        raise GroundTruthError(f"{header_path}: recipe_id {header.get('recipe_id')!r} does not "
                               f"match its recipe (edited by hand?)")
    if recipe is not None and recipe.recipe_id != stored.recipe_id:
        diff = [k for k, v in asdict(recipe).items() if asdict(stored)[k] != v]
        raise GroundTruthError(f"{header_path} was trained with another recipe "
                               f"(differs in {', '.join(diff)})")
    if not csv_path.exists():
        raise GroundTruthError(f"ground-truth rows {csv_path} do not exist")
    rows = _read_rows(csv_path)
    for i, r in enumerate(rows, start=2):
        if r.recipe_id != stored.recipe_id:
            raise GroundTruthError(f"{csv_path} line {i}: recipe_id {r.recipe_id!r} is not "
                                   f"the header's {stored.recipe_id!r}")
        if space is not None:
            try:
                space.decode(r.arch)
            except MobileNasError as exc:
                raise GroundTruthError(f"{csv_path} line {i}: {exc}") from None
    return GroundTruth(csv_path, header, tuple(rows))


def stratified_archs(space: SearchSpace, cost: Callable[[Architecture], float], *, bins: int,
                     per_bin: int, seed: int = 0,
                     pool_size: int = 4000) -> list[tuple[int, Architecture]]:
    """``per_bin`` distinct architectures from each of ``bins`` equal-count bins of ``cost``
    (e.g. predicted latency) over a seeded pool of ``pool_size`` samples, as (bin, arch).

    Returned round-robin (draw 0 of every bin, then draw 1, ...), so any prefix covers the
    whole cost range evenly.
    """
    rng = np.random.default_rng(seed)
    pool: dict[Architecture, float] = {}
    for _ in range(pool_size * 4):
        if len(pool) >= pool_size:
            break
        arch = space.sample(rng)
        if arch not in pool:
            pool[arch] = cost(arch)
    ordered = sorted(pool, key=lambda a: (pool[a], a.to_string()))
    edges = np.linspace(0, len(ordered), bins + 1).round().astype(int)
    draws = []
    for b in range(bins):
        members = ordered[edges[b]:edges[b + 1]]
        if len(members) < per_bin:
            raise GroundTruthError(f"bin {b} has {len(members)} architectures, fewer than "
                                   f"{per_bin}; use a larger pool")
        picks = rng.choice(len(members), size=per_bin, replace=False)
        draws.append([members[i] for i in picks])
    return [(b, draws[b][k]) for k in range(per_bin) for b in range(bins)]


def _read_header(path: Path) -> dict[str, Any]:
    try:
        header = json.loads(path.read_text())
    except FileNotFoundError:
        raise GroundTruthError(f"ground-truth header {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GroundTruthError(f"ground-truth header {path} is not valid JSON ({exc})") \
            from None
    if not isinstance(header, dict) or header.get("schema_version") != GROUND_TRUTH_SCHEMA:
        raise GroundTruthError(f"{path} is not a ground-truth header (schema_version "
                               f"{GROUND_TRUTH_SCHEMA})")
    return header


def _read_rows(path: Path) -> list[GroundTruthRow]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise GroundTruthError(f"cannot read {path} ({exc})") from None
    if text and not text.endswith("\n"):
        raise GroundTruthError(f"{path} is truncated (its last line is incomplete)")
    reader = csv.reader(io.StringIO(text))
    head = next(reader, None)
    if head != _COLUMNS:
        raise GroundTruthError(f"{path} does not have the ground-truth columns "
                               f"{', '.join(_COLUMNS)}")
    rows, seen = [], set()
    for i, values in enumerate(reader, start=2):
        if len(values) != len(_COLUMNS):
            raise GroundTruthError(f"{path} line {i} has {len(values)} fields, expected "
                                   f"{len(_COLUMNS)} (truncated or edited)")
        row = _parse(dict(zip(_COLUMNS, values, strict=True)), path, i)
        if (row.arch, row.seed) in seen:
            raise GroundTruthError(f"{path} line {i}: {row.arch} seed {row.seed} twice")
        seen.add((row.arch, row.seed))
        rows.append(row)
    return rows


def _parse(raw: dict[str, str], path: Path, line: int) -> GroundTruthRow:
    values: dict[str, Any] = {}
    for key, text in raw.items():
        try:
            values[key] = int(text) if key in _INTS else float(text) if key in _FLOATS else text
        except ValueError:
            raise GroundTruthError(f"{path} line {line}: {key} {text!r} is not a number") \
                from None
    for key in ("val_accuracy", "test_accuracy"):
        if not (math.isfinite(values[key]) and 0.0 <= values[key] <= 1.0):
            raise GroundTruthError(f"{path} line {line}: {key} {values[key]!r} is not in [0, 1]")
    return GroundTruthRow(**values)


def _format(row: GroundTruthRow) -> dict[str, str]:
    out = {}
    for key, value in asdict(row).items():
        out[key] = f"{value:.6g}" if isinstance(value, float) else str(value)
    return out


def make_header(space: SearchSpace, recipe: Recipe, **extra: Any) -> dict[str, Any]:
    """The header of a new set: space, recipe and its id, plus ``extra`` (machine, command)."""
    return {"space": space.name, "recipe": asdict(recipe), "recipe_id": recipe.recipe_id,
            **extra}


def train_row(arch: Architecture, *, role: str, seed: int, recipe: Recipe, dataset,
              predicted_ms: float) -> GroundTruthRow:
    """Trains ``arch`` alone with ``recipe`` and training seed ``seed`` on ``dataset`` (the
    recipe's split) and returns its row (validation and test accuracy, costs, wall time)."""
    import torch

    torch.manual_seed(seed)
    model = build_model(arch)
    t0 = time.perf_counter()
    result = train_model(model, dataset, seed=seed, progress=False, **recipe.train_kwargs())
    seconds = time.perf_counter() - t0
    test_acc = evaluate_accuracy(model, dataset.test, dataset.mean, dataset.std)
    costs = model_costs(arch)
    return GroundTruthRow(
        arch=arch.to_string(), role=role, seed=seed, recipe_id=recipe.recipe_id,
        val_accuracy=result.val_accuracy, test_accuracy=test_acc,
        train_loss=result.history[-1].train_loss, macs=int(costs.macs),
        params=int(costs.params), predicted_ms=predicted_ms, train_seconds=seconds,
        load_average=os.getloadavg()[0],
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))

