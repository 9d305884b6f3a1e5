"""Reading a search RUN_DIR (best.json, pareto.json, trials.csv) into plain records."""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobile_nas.errors import MobileNasError
from mobile_nas.search.pareto import non_dominated


class ReportError(MobileNasError):
    """A run folder that cannot be reported on."""


@dataclass(frozen=True)
class Run:
    """A finished (or partial) search: its best trial, Pareto front and every trial."""

    path: Path
    best: dict[str, Any]
    pareto: list[dict[str, Any]]
    trials: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)  # space, strategy, reward, latency

    @property
    def reward_fn(self) -> dict[str, Any]:
        """The reward definition (``reward_fn``; older runs stored it as ``reward``)."""
        for key in ("reward_fn", "reward"):
            if isinstance(self.meta.get(key), dict):
                return self.meta[key]
        return {}

    @property
    def targets(self) -> dict[str, float]:
        return dict(self.reward_fn.get("targets", {}))

    @property
    def best_trial(self) -> dict[str, Any] | None:
        """``best`` when it has the accuracy and latency a plot needs, else None."""
        return self.best if all(k in self.best for k in ("accuracy", "latency_ms")) else None

    @property
    def space(self) -> str | None:
        return self.meta.get("space") or self.best.get("space")


_NUM = ("accuracy", "latency_ms", "macs", "params", "reward", "duration_s")


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """Reads ``run_dir``; raises :class:`ReportError` naming what is missing or broken."""
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"run folder {str(path)!r} does not exist")
    best = _json(path / "best.json")
    pareto_doc = _json(path / "pareto.json") if (path / "pareto.json").is_file() else {}
    trials = _trials(path / "trials.csv")
    meta = {k: v for k, v in pareto_doc.items() if k not in ("trials", "objectives")}
    for key in ("space", "strategy", "dataset", "latency", "reward_fn"):
        if key in best:
            meta.setdefault(key, best[key])
    if isinstance(best.get("reward"), dict):  # early runs stored the definition as reward
        meta.setdefault("reward", best["reward"])
    pareto = [dict(r) for r in pareto_doc.get("trials", [])]
    if not pareto and trials:
        idx = non_dominated([(r["accuracy"], r["latency_ms"], r["macs"]) for r in trials],
                            (True, False, False))
        pareto = sorted((trials[i] for i in idx), key=lambda r: r["latency_ms"])
    return Run(path, best, pareto, trials, meta)


def _json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ReportError(f"{str(path)!r} is missing (run 'mobile-nas search ... --out "
                          f"{path.parent}' first)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"cannot read {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ReportError(f"{str(path)!r} is not a JSON object")
    return data


def _trials(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ReportError(f"{str(path)!r} is missing")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReportError(f"cannot read {str(path)!r}: {exc}") from None
    out = []
    for i, row in enumerate(rows):
        try:
            rec: dict[str, Any] = {"number": int(row["number"]), "arch": row["arch"],
                                   "feasible": row.get("feasible", "").lower() == "true"}
            for k in _NUM:
                v = row.get(k)
                rec[k] = float(v) if v not in (None, "") else math.nan
        except (KeyError, ValueError, TypeError) as exc:
            raise ReportError(f"{str(path)!r} row {i + 2} is malformed ({exc})") from None
        out.append(rec)
    return sorted(out, key=lambda r: r["number"])
