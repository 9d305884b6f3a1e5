"""Run outputs: best.json, pareto.json, trials.csv (pareto.png is drawn by
:func:`mobile_nas.report.pareto.plot_run_pareto`, which ``mobile-nas search`` calls)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.search.pareto import non_dominated

if TYPE_CHECKING:
    from optuna import Study

OUTPUT_SCHEMA_VERSION = 1
#: The fields of a trial that best.json holds at its top level (and in ``predicted_best``).
BEST_FIELDS = ("arch", "accuracy", "latency_ms", "macs", "params", "reward", "feasible")
CSV_FIELDS = ("number", "arch", "accuracy", "latency_ms", "macs", "params", "reward",
              "feasible", "duration_s")


def trial_records(study: Study) -> list[dict[str, Any]]:
    """One record per finished (COMPLETE) trial, in trial order."""
    from optuna.trial import TrialState

    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        a = t.user_attrs
        if "arch" not in a:
            continue
        dur = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        out.append({"number": t.number, "arch": a["arch"], "accuracy": a["accuracy"],
                    "latency_ms": a["latency_ms"], "macs": a["macs"], "params": a["params"],
                    "reward": a["reward"], "feasible": bool(a["feasible"]),
                    "duration_s": round(dur, 3) if dur is not None else None})
    return out


def skipped_count(study: Study) -> int:
    """Candidates the search did not evaluate because a target ruled them out (PRUNED trials
    with the user attribute ``skipped``)."""
    from optuna.trial import TrialState

    return sum(bool(t.user_attrs.get("skipped"))
               for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))


def best_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Best reward among feasible trials; if none is feasible, the best reward overall
    (its ``feasible`` is then false)."""
    if not records:
        return None
    feasible = [r for r in records if r["feasible"]]
    pool = feasible or records
    return max(pool, key=lambda r: (r["reward"], -r["number"]))


def pareto_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Non-dominated trials over accuracy (max), latency_ms (min) and MACs (min), by
    latency; one trial per distinct architecture."""
    unique: dict[str, dict[str, Any]] = {}
    for r in records:
        unique.setdefault(r["arch"], r)
    rows = list(unique.values())
    idx = non_dominated([(r["accuracy"], r["latency_ms"], r["macs"]) for r in rows],
                        (True, False, False))
    return sorted((rows[i] for i in idx), key=lambda r: (r["latency_ms"], -r["accuracy"]))


def write_outputs(out_dir: str | Path, study: Study, *, meta: dict[str, Any]) -> dict[str, Any]:
    """Writes best.json, pareto.json and trials.csv atomically; returns best."""
    out_dir = Path(out_dir)
    records = trial_records(study)
    best = best_record(records)
    pareto = pareto_records(records)
    best_doc = {"schema_version": OUTPUT_SCHEMA_VERSION, **meta, "trials": len(records),
                "skipped": skipped_count(study)}
    if best is not None:
        best_doc.update({k: best[k] for k in BEST_FIELDS})
        best_doc["trial"] = best["number"]
    else:
        best_doc["feasible"] = False
    atomic_write_json(out_dir / "best.json", best_doc)
    atomic_write_json(out_dir / "pareto.json", {"schema_version": OUTPUT_SCHEMA_VERSION,
                                                **meta, "objectives": {
                                                    "accuracy": "max", "latency_ms": "min",
                                                    "macs": "min"}, "trials": pareto})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(out_dir / "trials.csv", buf.getvalue())
    return best_doc


def write_verified_best(out_dir: str | Path, best_doc: dict[str, Any],
                        records: list[dict[str, Any]], verified: dict[str, Any],
                        chosen_arch: str | None) -> dict[str, Any]:
    """Rewrites best.json with the ``verified`` block of the finalists' timing
    (:meth:`mobile_nas.search.finalists.Verification.to_json`); returns it.

    When finalists were timed, ``predicted_best`` keeps the search's own best and the top
    level becomes the trial of ``chosen_arch`` (its best-rewarded record); with no pick
    (none measured within the target) the top level stays the predicted best.
    """
    doc = {**best_doc, "verified": verified}
    if "skipped" not in verified and "arch" in best_doc:
        doc["predicted_best"] = {**{k: best_doc[k] for k in BEST_FIELDS},
                                 "trial": best_doc["trial"]}
        picks = [r for r in records if r["arch"] == chosen_arch]
        if picks:
            pick = max(picks, key=lambda r: (r["reward"], -r["number"]))
            doc.update({k: pick[k] for k in BEST_FIELDS})
            doc["trial"] = pick["number"]
    atomic_write_json(Path(out_dir) / "best.json", doc)
    return doc
