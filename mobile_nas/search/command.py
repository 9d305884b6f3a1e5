"""search_from_config: what ``mobile-nas search`` runs, as one library call.

The command parses its flags into a :class:`~mobile_nas.search.runner.SearchConfig`, calls
:func:`search_from_config`, draws RUN_DIR/pareto.png
(:func:`mobile_nas.report.pareto.plot_run_pareto`, a layer above this one) and prints the
result: a script or test that calls this function gets the study, best.json, pareto.json and
trials.csv the command writes for the same configuration.
"""

from __future__ import annotations

from contextlib import nullcontext

from mobile_nas.search.errors import SearchSettingError
from mobile_nas.search.runner import SearchConfig, SearchResult, run_search, train_search_supernet
from mobile_nas.search.table_evaluator import table_search_inputs
from mobile_nas.train.distributed import distributed, launched_by_torchrun


def search_from_config(config: SearchConfig, *, accuracy_csv: str | None = None,
                       latency_csv: str | None = None) -> SearchResult | None:
    """Runs (or resumes) the search of ``config`` as ``mobile-nas search`` does.

    ``accuracy_csv`` / ``latency_csv`` are the tabular benchmark of ``config.evaluator ==
    "table"`` (``--accuracy-csv`` / ``--latency-csv``, read by
    :func:`mobile_nas.search.table_evaluator.table_search_inputs`). Under torchrun every
    process calls this: ranks other than 0 train the supernet with rank 0
    (:func:`~mobile_nas.search.runner.train_search_supernet`) and return None; rank 0 (and
    a lone process) searches and returns its :class:`SearchResult`.

    Raises :class:`~mobile_nas.search.errors.SearchSettingError` without a latency or MAC
    target, :class:`~mobile_nas.cost.latency.errors.LatencyTargetError` for a reference
    target that cannot be resolved, and the :class:`~mobile_nas.errors.MobileNasError` of
    :func:`run_search` for other bad input.
    """
    if config.latency_target_ms is None and config.latency_target is None and \
            config.macs_target is None:
        raise SearchSettingError("latency_target_ms",
                                 "give a target: {what} or {others[0]}, and/or {others[1]}",
                                 others=("latency_target", "macs_target"))
    evaluator, latency_fn = table_search_inputs(
        space=config.space, evaluator=config.evaluator, accuracy_csv=accuracy_csv,
        latency_csv=latency_csv, table=config.table, measure=config.measure,
        precision=config.precision)
    # one process: as ever (the device is checked only where torch computes)
    with distributed(config.device) if launched_by_torchrun() else nullcontext() as dist:
        if dist is not None and not dist.is_main:  # trains the supernet with rank 0
            train_search_supernet(config, dist)
            return None
        return run_search(config, evaluator=evaluator, latency_fn=latency_fn,
                          distributed=dist if dist is not None and dist.enabled else None)
