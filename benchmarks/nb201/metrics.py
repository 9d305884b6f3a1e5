"""Per-run numbers of stored NAS-Bench-201 runs: regret curves and hypervolume fractions.

* *Regret* at budget ``b`` = (the table's best accuracy among feasible cells) - (the best
  feasible accuracy the run found within ``b``), in accuracy points; a run with no feasible
  find scores accuracy 0. Two views (:mod:`mobile_nas.search.counting`): *per query* (the
  first ``b`` queries) and *per distinct architecture* (the first ``b`` different cells; a
  repeat is free). A run stopped by the cap before ``DISTINCT`` distinct cells keeps its
  last value.
* *Hypervolume fraction*: the hypervolume of the cells a run evaluated within ``b`` (every
  cell, feasible or not), over the hypervolume of the whole table, for (accuracy up, latency
  down) and (accuracy up, latency down, MACs down), with the fixed reference point of
  :func:`nb201.data.reference_point`; exact, by :func:`mobile_nas.search.pareto.hypervolume`.

Budgets are read from :mod:`nb201.protocol` when a record is measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mobile_nas.search.counting import VIEWS, best_so_far, prefix, repeat_flags
from mobile_nas.search.pareto import hypervolume
from nb201 import protocol as P
from nb201.data import Nb201Data, reference_point


class Metrics:
    """Regret curves and hypervolume fractions of stored runs (cached per (device, dataset))."""

    def __init__(self, data: Nb201Data) -> None:
        self.data = data
        self._true: dict[tuple[str, str], tuple[float, float]] = {}

    def true_hypervolumes(self, device: str, dataset: str) -> tuple[float, float]:
        if (device, dataset) not in self._true:
            acc, lat = self.data.accuracy(dataset), self.data.latency(device)
            ref = reference_point(self.data, device, dataset)
            pts3 = np.stack([acc, lat, self.data.macs()], axis=1)
            self._true[(device, dataset)] = (
                hypervolume(pts3[:, :2], (True, False), ref[:2]),
                hypervolume(pts3, (True, False, False), ref))
        return self._true[(device, dataset)]

    def of(self, record: dict[str, Any]) -> dict[str, Any]:
        setting = P.Setting.from_key(record["setting"])
        idx = np.asarray(record["indices"], dtype=int)
        rep = repeat_flags(idx.tolist())
        if [i for i, r in enumerate(rep) if r] != list(record["repeats"]):
            raise P.ProtocolError(f"{record['key']}: stored repeats do not match its indices")
        acc = self.data.accuracy(setting.dataset)[idx]
        lat = self.data.latency(setting.device)[idx]
        feasible = lat <= self.data.target_ms(setting)
        _, opt = self.data.optimum(setting)
        out: dict[str, Any] = {"setting": setting, "seed": record["seed"],
                               "strategy": record["strategy"],
                               "stopped": record["stopped"], "queries": record["queries"],
                               "distinct": record["distinct"], "seconds": record["seconds"],
                               "cpu_seconds": record.get("cpu_seconds", float("nan"))}
        for view, length in (("query", P.QUERIES), ("distinct", P.DISTINCT)):
            best = best_so_far(acc, feasible, rep, view=view)[:length]
            best = np.nan_to_num(best, nan=0.0)  # nothing feasible yet: accuracy 0
            if len(best) < length:  # stopped by the query cap: the last value stays
                best = np.concatenate([best, np.full(length - len(best), best[-1])])
            out[f"regret_{view}"] = 100.0 * (opt - best)
        hv2_true, hv3_true = self.true_hypervolumes(*setting.pair)
        ref = reference_point(self.data, *setting.pair)
        macs = self.data.macs()
        for view in VIEWS:
            for b in P.BUDGETS:
                sel = np.unique(prefix(idx.tolist(), rep, b, view=view))
                pts = np.stack([self.data.accuracy(setting.dataset)[sel],
                                self.data.latency(setting.device)[sel], macs[sel]], axis=1)
                out[f"hv2_{view}_{b}"] = hypervolume(pts[:, :2], (True, False),
                                                     ref[:2]) / hv2_true
                out[f"hv3_{view}_{b}"] = hypervolume(pts, (True, False, False),
                                                     ref) / hv3_true
        out["distinct_at_query_budget"] = len(set(idx[:P.QUERIES].tolist()))
        return out


def value(m: dict[str, Any], metric: str, budget: int) -> float:
    """One number of a run: ``regret_query`` / ``regret_distinct`` at ``budget`` or a
    hypervolume fraction ``hv2_query`` ... at ``budget``."""
    if metric.startswith("regret_"):
        return float(m[metric][budget - 1])
    return float(m[f"{metric}_{budget}"])
