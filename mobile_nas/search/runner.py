"""run_search: one resumable, shareable search recorded in an Optuna study.

Every trial suggests the space's decisions (so the study is readable with plain Optuna),
stores the user attributes ``arch``, ``accuracy``, ``latency_ms``, ``macs``, ``params``,
``reward`` and ``feasible``, and returns the reward (``nsga2``, ``motpe``: accuracy and the targeted
metrics, with the targets as Optuna constraints). The study lives in
``sqlite:///RUN_DIR/study.db`` unless ``storage`` names another database. Heartbeats mark the
trials of killed processes failed, so ``resume`` reaches ``trials`` finished trials without
losing or repeating any; strategy state is saved beside the study after every trial
(``RUN_DIR/strategy_state.safetensors``; the ``strategy_state.pt`` of earlier releases is still
read). Several processes on one storage and study cooperate.

A candidate whose predicted latency or MACs the cost model already puts beyond its target by
more than ``skip_margin`` (the table's error) is not evaluated: its trial is recorded as
PRUNED with ``skipped=True`` and the reward it would get at accuracy 0, which the strategy is
told, and it does not count towards ``trials`` (the saved evaluations are counted in
``SearchResult.skipped``).

A latency target is milliseconds (``latency_target_ms``) or a reference network
(``latency_target``: ``REF`` or ``<factor>xREF``, resolved to milliseconds by the latency
source in use, :mod:`mobile_nas.cost.latency.relative`). With ``verify_top`` > 0 a search
with a latency target ends by timing its best ``verify_top`` feasible candidates against the
reference on this machine (where its latency is this machine's) and best.json names the most
accurate that measured within the target (:mod:`mobile_nas.search.finalists`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_nas.atomic import atomic_write_json
from mobile_nas.cost.latency.probe import DEFAULT_PROBES, ReferenceProbe
from mobile_nas.cost.latency.relative import (
    ResolvedTarget,
    parse_latency_target,
    resolve_latency_target,
)
from mobile_nas.cost.latency.settings import PRECISIONS
from mobile_nas.errors import MobileNasError, OutOfRangeError
from mobile_nas.progress import progress_bar, write_line
from mobile_nas.search import presets
from mobile_nas.search.costs import CostModel, LatencyFn, measured_latency_fn, table_latency_fn
from mobile_nas.search.errors import SearchError, SearchSettingError
from mobile_nas.search.evaluator import Evaluator
from mobile_nas.search.evaluators import (
    EVALUATORS,
    search_dataset,
    shipped_supernet,
    train_fresh_supernet,
)
from mobile_nas.search.finalists import (
    FinalistTimer,
    Verification,
    probe_search_reference,
    source_words,
    verify_search,
)
from mobile_nas.search.outputs import (
    pareto_records,
    skipped_count,
    trial_records,
    write_outputs,
    write_verified_best,
)
from mobile_nas.search.rewards import Reward, make_reward
from mobile_nas.space import get_space
from mobile_nas.space.base import SearchSpace

if TYPE_CHECKING:
    from optuna import Study
    from optuna.storages import BaseStorage
    from optuna.trial import Trial

    from mobile_nas.train.distributed import Distributed

HEARTBEAT_S = 5
GRACE_S = 20
MAX_SKIPPED_IN_A_ROW = 2000
MAX_FAILED_IN_A_ROW = 5


class _EvaluationFailed(Exception):
    """An evaluation that raised: its trial fails (reason in ``error``) and the search goes
    on; bad settings (:class:`MobileNasError`) still end it."""


@dataclass(frozen=True)
class SearchConfig:
    """Everything ``mobile-nas search`` takes (see ``mobile-nas search --help``)."""

    space: str
    strategy: str
    trials: int
    out_dir: str
    dataset: str = "fashion-mnist"
    # validation images held out of the training split: a count, a fraction, or None (10%
    # of the training images, at most 5,000: mobile_nas.train.data.resolve_val_size)
    val_size: int | float | None = None
    latency_target_ms: float | None = None
    # a target set by a reference: "REF" or "<factor>xREF" (e.g. "0.9xfmnist28_mnasnet"),
    # REF a reference name, an arch string or a mobile-nas ONNX file; excludes the ms target
    latency_target: str | None = None
    macs_target: float | None = None
    # time this many of the best feasible candidates against the reference after the
    # search and pick the most accurate that measures within the target (0: do not)
    verify_top: int = 5
    # before searching, time this many probe networks interleaved with the target's
    # reference and take ratios against the reference so placed (0: the table's prediction
    # of the reference; mobile_nas.cost.latency.probe; on by default since protocol
    # benchmarks/protocols/latency_prediction_intel_v6.json)
    probe_reference: int = DEFAULT_PROBES
    reward: str = "hard"  # the target is a budget (see mobile_nas.search.rewards)
    table: str | None = None
    measure: bool = False
    # the precision latency is predicted (a table built for it) or measured for: fp32, int8
    precision: str = "fp32"
    # time the layers a candidate needs and the table lacks, adding them to it; None: for a
    # table this machine timed (mobile_nas.cost.latency.ondemand)
    profile_missing: bool | None = None
    storage: str | None = None
    study_name: str = "search"
    resume: bool = False
    # the strategy's randomness; None: 0 for the process that creates the study, a seed
    # derived from host and process id for a worker joining one (recorded in the study)
    seed: int | None = None
    split_seed: int = 0  # the train/validation split and the evaluator's fixed batches
    skip_margin: float | None = 0.1  # None: evaluate every candidate, even far past a target
    preset: str = "default"
    supernet: str | None = None
    train_supernet: bool = False  # ignore the space's shipped supernet and train a fresh one
    # "proxy": train each arch alone; "naswot"/"synflow": zero-cost proxies of the untrained
    # network; "table": pass evaluator=
    evaluator: str = "supernet"
    data_dir: str | None = None
    threads: int | None = None
    device: str = "auto"  # where torch trains and scores (latency stays on onnxruntime)
    amp: bool | None = None  # mixed precision; None: on for CUDA only
    strategy_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    heartbeat_s: int = HEARTBEAT_S  # a killed worker's running trial is failed after grace_s
    grace_s: int = GRACE_S


@dataclass(frozen=True)
class SearchResult:
    """What a finished search produced (also written to ``out_dir``)."""

    out_dir: Path
    best: dict[str, Any]
    pareto: list[dict[str, Any]]
    trials: int
    storage: str
    study_name: str
    seconds: float
    evaluator: dict[str, Any] = field(default_factory=dict)  # what scored, where (device)
    skipped: int = 0  # candidates beyond a target by more than skip_margin, not evaluated
    seed: int = 0  # the strategy seed this process used
    target: ResolvedTarget | None = None  # a reference target, resolved to milliseconds
    verification: Verification | None = None  # the finalists' timing (None: no target/off)


def run_search(config: SearchConfig, *, evaluator: Evaluator | None = None,
               latency_fn: LatencyFn | None = None,
               on_trial: Callable[[dict[str, Any]], None] | None = None,
               stop_when: Callable[[], bool] | None = None,
               finalist_timer: FinalistTimer | None = None,
               distributed: Distributed | None = None) -> SearchResult:
    """Runs (or resumes) the search of ``config`` until it has ``config.trials`` finished
    trials and writes best.json, pareto.json and trials.csv to ``out_dir``.

    ``stop_when`` (checked before every new trial) ends the search early when it returns
    True: a budget ``config.trials`` cannot express, e.g. a number of distinct architectures
    counted by ``on_trial`` (benchmarks/nb201_protocol.py).

    ``distributed`` (rank 0 of a torchrun job): the fresh supernet (``train_supernet``, which
    the job requires) is trained by every process, the others running
    :func:`train_search_supernet`; the search itself, with batch-norm recalibration and
    scoring, runs on rank 0 alone.

    ``evaluator`` / ``latency_fn`` replace the supernet evaluator and the latency table
    (library use, benchmarks, tests); ``finalist_timer`` replaces onnxruntime when the
    finalists are timed (tests). Without ``latency_fn``, latency comes from the table
    built for ``config.precision`` (a table of another precision is refused, naming the
    ``lut build`` command that makes one) or is measured at that precision. Bad input raises
    a :class:`MobileNasError` before the study is created or changed.
    """
    import optuna

    from mobile_nas.search.sampler import (
        MULTI_OBJECTIVE_STRATEGIES,
        STATE_FILE,
        make_sampler,
        strategy_names,
    )

    t0 = time.time()
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    # -- validate everything before touching the study ------------------------------------
    if config.trials < 1:
        raise OutOfRangeError("trials", config.trials, "a positive integer")
    if config.skip_margin is not None and not 0 <= config.skip_margin < 10:
        raise OutOfRangeError("skip_margin", config.skip_margin, "in [0, 10)")
    space = get_space(config.space)
    if config.strategy not in strategy_names():
        raise SearchError(f"unknown strategy {config.strategy!r}; known: "
                          f"{', '.join(strategy_names())}")
    # bad strategy options (--strategy-option) fail here, before a study exists
    make_sampler(config.strategy, space=space, seed=0, state_path=None,
                 **config.strategy_options)
    if config.latency_target is not None and config.latency_target_ms is not None:
        raise SearchError("give one latency target: milliseconds or a reference, not both")
    if config.verify_top < 0:
        raise SearchError(f"verify_top must be >= 0 (0: no finalists timed), got "
                          f"{config.verify_top}")
    if config.probe_reference < 0:
        raise OutOfRangeError("probe_reference", config.probe_reference,
                              "a count of probe networks >= 0 (0: no probe)")
    spec = None if config.latency_target is None else parse_latency_target(
        config.latency_target)
    if config.precision not in PRECISIONS:
        raise SearchError(f"unknown precision {config.precision!r}; known: "
                          f"{', '.join(PRECISIONS)}")
    if config.threads is not None:
        import torch

        torch.set_num_threads(config.threads)
    if latency_fn is not None:
        cost_model = CostModel(latency_fn=latency_fn, source="custom")
    else:
        if config.measure and config.table:
            raise SearchSettingError("table", "pass either {what} or {others[0]}, not both",
                                     value=config.table, others=("measure",))
        if config.measure and config.profile_missing:
            raise SearchSettingError("profile_missing",
                                     "{what} fills a latency table; {others[0]} uses none",
                                     value=config.profile_missing, others=("measure",))
        fn, source = measured_latency_fn(precision=config.precision) if config.measure \
            else table_latency_fn(space, config.table, precision=config.precision,
                                  profile_missing=config.profile_missing,
                                  report=_stderr_line if config.progress else None)
        cost_model = CostModel(latency_fn=fn, source=source)
    say = _stderr_line if config.progress else None
    target = None if spec is None else resolve_latency_target(spec, space.name,
                                                              cost_model.latency_fn)
    out_dir = Path(config.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SearchSettingError("out_dir", "{what} {value!r} exists and is not a folder",
                                 value=str(out_dir))
    if target is not None and config.probe_reference > 0:
        target = _probed_target(target, config, out_dir, cost_model, finalist_timer, say)
    target_ms = config.latency_target_ms if target is None else target.target_ms
    reward = make_reward(latency_target_ms=target_ms, macs_target=config.macs_target,
                         kind=config.reward)
    if target is not None and say is not None:
        say(target.describe(source_words(cost_model.source)))
    build_evaluator = None
    if evaluator is None:
        factory = EVALUATORS.get(config.evaluator)  # mobile_nas.search.evaluators
        _check_distributed(config, distributed)
        build_evaluator = factory(config, space, out_dir, distributed)
    if config.storage == "memory" and config.resume:
        raise SearchError("an in-memory storage cannot be resumed")
    storage_url = config.storage or f"sqlite:///{(out_dir / 'study.db').resolve()}"
    meta = {"space": space.name, "strategy": config.strategy, "dataset": config.dataset,
            "reward_fn": reward.to_json(), "latency": cost_model.source,
            "precision": config.precision}
    if target is not None:
        meta["latency_target"] = target.to_json()
    out_dir.mkdir(parents=True, exist_ok=True)
    storage = _open_storage(storage_url, config.heartbeat_s, config.grace_s)
    existed = _check_existing_study(storage, config, meta)
    worker = _worker_name()
    seed = config.seed if config.seed is not None else (
        _derived_seed(worker) if existed else 0)
    # -- evaluator (may train the supernet), study, loop ----------------------------------
    if build_evaluator is not None:
        evaluator = build_evaluator()
    assert evaluator is not None
    if evaluator.space.name != space.name:
        raise SearchError(f"the evaluator scores space {evaluator.space.name!r}, not "
                          f"{space.name!r}")
    multi = config.strategy in MULTI_OBJECTIVE_STRATEGIES
    sampler = make_sampler(config.strategy, space=space, seed=seed,
                           state_path=None if config.storage == "memory"
                           else out_dir / STATE_FILE,
                           **config.strategy_options)
    up, down = optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE
    directions = [up] + [down] * len(reward.targets) if multi else [up]
    study = optuna.create_study(storage=storage, study_name=config.study_name,
                                sampler=sampler, directions=directions, load_if_exists=True)
    if "mobile_nas" not in study.user_attrs:
        study.set_user_attr("mobile_nas", {**meta, "config": _jsonable(config),
                                           "evaluator": evaluator.describe()})
    study.set_user_attr(f"seed:{worker}", seed)  # which worker drew from which stream
    objective = _objective(space, evaluator, cost_model, reward, multi, config.skip_margin)
    zero_cost = str(evaluator.describe().get("name", "")).startswith("zero-cost")
    names = objective_names(reward, multi=multi, score_not_accuracy=zero_cost)
    if study.metric_names != names:  # what optuna-dashboard shows instead of "Objective 0"
        study.set_metric_names(names)
    _loop(study, objective, config, on_trial, stop_when, score_not_accuracy=zero_cost)
    best = write_outputs(out_dir, study, meta=meta)  # written before the finalists are timed
    records = trial_records(study)
    verification = None
    if config.verify_top > 0:
        verification = verify_search(records, top_k=config.verify_top, space_name=space.name,
                                     latency_source=cost_model.source,
                                     predict_ms=cost_model.latency_fn, target=target,
                                     target_ms=target_ms, precision=config.precision,
                                     timer=finalist_timer, report=say)
    if verification is not None:
        if say is not None:
            say(verification.summary())
        best = write_verified_best(out_dir, best, records, verification.to_json(),
                                   verification.chosen_arch)
    return SearchResult(out_dir, best, pareto_records(records), len(records), storage_url,
                        config.study_name, time.time() - t0, evaluator.describe(),
                        skipped_count(study), seed, target, verification)


def objective_names(reward: Reward, *, multi: bool, score_not_accuracy: bool = False
                    ) -> list[str]:
    """The names of a study's objective values, in order: ``["reward"]`` for one objective;
    for the Pareto strategies ``"accuracy"`` (``"score"`` for a zero-cost evaluator) and
    each targeted metric (e.g. ``"latency_ms"``)."""
    if not multi:
        return ["reward"]
    return ["score" if score_not_accuracy else "accuracy", *(t.metric for t in reward.targets)]


# -- helpers ---------------------------------------------------------------------------------
PROBE_FILE = "reference_probe.json"


def _probed_target(target: ResolvedTarget, config: SearchConfig, out_dir: Path,
                   cost_model: CostModel, timer: FinalistTimer | None,
                   say: Callable[[str], None] | None) -> ResolvedTarget:
    """``target`` with its reference probed on this machine, or as the study already has it
    (a resumed search, a worker joining a shared study: the target must not move), or
    unchanged where the latency is not this machine's (said in one line)."""
    stored = _stored_probe(out_dir, config, target)
    if stored is not None:
        return target.with_probe(stored)
    probed, why = probe_search_reference(target, latency_source=cost_model.source,
                                         predict_ms=cost_model.latency_fn,
                                         k=config.probe_reference, precision=config.precision,
                                         timer=timer, report=say)
    if why is not None:
        if say is not None:
            say(f"reference not probed: {why}")
        return target
    assert probed.probe is not None
    if say is not None:
        say(probed.probe.describe())
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / PROBE_FILE, probed.probe.to_json())
    return probed


def _stored_probe(out_dir: Path, config: SearchConfig, target: ResolvedTarget
                  ) -> ReferenceProbe | None:
    """The probe of this reference recorded by an earlier run of the study, with the same
    number of probes and the same table (its prediction of the reference): in ``out_dir``, or
    in the shared study's attributes; None if none."""
    data: dict[str, Any] | None = None
    if (out_dir / PROBE_FILE).is_file():
        data = json.loads((out_dir / PROBE_FILE).read_text())
    elif config.storage not in (None, "memory"):
        storage = _open_storage(str(config.storage), config.heartbeat_s, config.grace_s)
        try:
            study_id = storage.get_study_id_from_name(config.study_name)
        except KeyError:
            return None
        meta = storage.get_study_user_attrs(study_id).get("mobile_nas", {})
        data = (meta.get("latency_target") or {}).get("probe")
    if not data or data.get("reference") != str(target.reference_arch) or \
            len(data.get("probes", ())) != config.probe_reference or \
            abs(float(data["reference_predicted_ms"]) / target.reference_predicted_ms - 1) > 1e-9:
        return None
    return ReferenceProbe.from_json(data)


def _stderr_line(text: str) -> None:
    """One line on stderr that does not break the progress bar."""
    write_line(text)


def _open_storage(url: str, heartbeat_s: int, grace_s: int) -> BaseStorage:
    from optuna.storages import InMemoryStorage, RDBStorage

    if url == "memory":
        return InMemoryStorage()
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    for attempt in range(6):
        try:
            return RDBStorage(url, heartbeat_interval=heartbeat_s, grace_period=grace_s,
                              **kwargs)
        except Exception as exc:  # sqlalchemy raises many kinds; all mean "unusable storage"
            text = str(exc).strip()
            if attempt < 5 and _schema_race(url, exc):
                time.sleep(0.3 * (attempt + 1))
                continue
            first = text.splitlines()[0] if text else type(exc).__name__
            if isinstance(exc, ImportError):
                first = (f"no database driver for it ({exc.__cause__ or first}); for "
                         f"PostgreSQL: pip install 'mobile-nas[postgres]'")
            raise SearchError(f"cannot open storage {url!r}: {first}") from None
    raise AssertionError("unreachable")


def _schema_race(url: str, exc: Exception) -> bool:
    """Whether opening failed because another worker was creating the same tables at once
    (workers started together on a fresh database), which a retry resolves."""
    if url.startswith("sqlite"):  # "database is locked" while another creates the tables
        return True
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    text = str(exc).lower()
    return isinstance(exc, IntegrityError) or (isinstance(exc, ProgrammingError)
                                               and "already exists" in text)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _derived_seed(worker: str) -> int:
    """A seed of its own for a worker joining a study (so that workers of one study do not
    draw the same candidates)."""
    return int(hashlib.sha256(worker.encode()).hexdigest()[:8], 16)


def _check_existing_study(storage: BaseStorage, config: SearchConfig, meta: dict[str, Any]) -> bool:
    """Refuses to reuse a study with other settings, or without --resume; True if the study
    exists already."""
    import optuna

    try:
        study_id = storage.get_study_id_from_name(config.study_name)
    except KeyError:
        return False
    attrs = storage.get_study_user_attrs(study_id).get("mobile_nas", {})
    n = len(storage.get_all_trials(study_id, deepcopy=False))
    if not config.resume and n:
        raise SearchSettingError("resume", "study {study!r} in {storage} already has "
                                 "{trials} trials; pass {what} to continue it (or use "
                                 "another {others[0]})", value=False, others=("out_dir",),
                                 study=config.study_name, storage=_shown(config), trials=n)
    if attrs:  # studies before precisions were recorded optimized fp32 latency
        attrs = {"precision": "fp32", **attrs}
    for key in ("space", "strategy", "dataset", "reward_fn", "precision"):
        if key in attrs and attrs[key] != meta[key]:
            raise SearchError(f"cannot resume: the study was run with {key}={attrs[key]!r}, "
                              f"now {key}={meta[key]!r}")
    del optuna
    return True


def _shown(config: SearchConfig) -> str:
    return config.storage or f"{config.out_dir}/study.db"


def _check_distributed(config: SearchConfig, distributed: Distributed | None) -> None:
    """Under torchrun the processes train one fresh supernet together: nothing else."""
    if distributed is None or not distributed.enabled:
        return
    if config.evaluator != "supernet" or config.supernet or not config.train_supernet:
        raise SearchSettingError("train_supernet", "under torchrun, search trains its "
                                 "supernet on every process and searches on rank 0: pass "
                                 "{what} (with the supernet evaluator, no {others[0]}), or run "
                                 "the search in one process", value=config.train_supernet,
                                 others=("supernet",))


def train_search_supernet(config: SearchConfig, distributed: Distributed) -> None:
    """The part of ``search --train-supernet`` that ranks other than 0 of a torchrun job
    run: the supernet's training, with rank 0 (which writes RUN_DIR/supernet.pt)."""
    _check_distributed(config, distributed)
    space = get_space(config.space)
    presets.get_preset(config.preset)
    train_fresh_supernet(config, space, search_dataset(config, space), Path(config.out_dir),
                         distributed)


#: the name earlier releases (and tests/models/test_pretrained.py) import from here
_shipped_supernet = shipped_supernet


def _objective(space: SearchSpace, evaluator: Evaluator, cost_model: CostModel,
               reward: Reward, multi: bool, skip_margin: float | None
               ) -> Callable[[Trial], float | tuple[float, ...]]:
    import optuna

    worker = _worker_name()

    def objective(trial: Trial) -> float | tuple[float, ...]:
        trial.set_user_attr("worker", worker)  # who runs it, visible while it runs
        arch = space.make({d.name: trial.suggest_categorical(d.name, d.choices)
                           for d in space.decisions})
        costs = cost_model(arch)
        metrics = costs.metrics()
        if skip_margin is not None and reward.beyond(metrics, skip_margin):
            for key, v in (("arch", arch.to_string()), ("latency_ms", costs.latency_ms),
                           ("macs", costs.macs), ("params", costs.params),
                           ("reward", reward(0.0, metrics)), ("feasible", False),
                           ("skipped", True)):
                trial.set_user_attr(key, v)
            raise optuna.TrialPruned(f"beyond the target by more than {skip_margin:.0%}")
        try:
            accuracy = float(evaluator.evaluate(arch))
        except MobileNasError:
            raise
        except Exception as exc:  # noqa: BLE001  (one network's failure must not end a search)
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            trial.set_user_attr("arch", arch.to_string())
            trial.set_user_attr("error", reason)
            raise _EvaluationFailed(reason) from exc
        value = reward(accuracy, metrics)
        for key, v in (("arch", arch.to_string()), ("accuracy", accuracy),
                       ("latency_ms", costs.latency_ms), ("macs", costs.macs),
                       ("params", costs.params), ("reward", value),
                       ("feasible", reward.feasible(metrics))):
            trial.set_user_attr(key, v)
        if multi:  # the Pareto strategies' constraint: every metric at most its target
            for t in reward.targets:
                trial.set_constraint(t.metric, metrics[t.metric] / t.value - 1.0)
            return (accuracy, *(metrics[t.metric] for t in reward.targets))
        return value

    return objective


def _loop(study: Study, objective: Callable[[Trial], float | Sequence[float]],
          config: SearchConfig, on_trial: Callable[[dict[str, Any]], None] | None,
          stop_when: Callable[[], bool] | None = None, *,
          score_not_accuracy: bool = False) -> None:
    from optuna.storages import fail_stale_trials
    from optuna.trial import TrialState

    def counts() -> tuple[int, int]:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,
                                                          TrialState.RUNNING))
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        return done, len(trials) - done

    done, _ = counts()
    bar = progress_bar(total=config.trials, initial=min(done, config.trials), unit="trial",
                       desc=f"search {config.strategy}", disable=not config.progress)
    best: tuple[float, float, float] | None = None  # reward, accuracy, latency
    skipped_in_a_row = failed_in_a_row = 0

    def update_best() -> None:
        nonlocal best
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            a = t.user_attrs
            if a.get("feasible") and (best is None or a["reward"] > best[0]):
                best = (a["reward"], a["accuracy"], a["latency_ms"])
        skipped = len(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
        shown = "" if best is None else (f"score={best[1]:.4g}" if score_not_accuracy
                                         else f"acc={100 * best[1]:.2f}%")
        text = "" if best is None else f"best feasible {shown} lat={best[2]:.2f}ms"
        if skipped:
            text += f"{' ' if text else ''}skipped={skipped}"
        if text:
            bar.set_postfix_str(text)

    callbacks = [] if on_trial is None else [
        lambda _study, t: on_trial({"number": t.number, **t.user_attrs})
        if t.state == TrialState.COMPLETE else None]
    update_best()
    try:
        while True:
            fail_stale_trials(study)
            done, running = counts()
            bar.n = min(done, config.trials)
            bar.refresh()
            if done >= config.trials or (stop_when is not None and stop_when()):
                break
            if done + running >= config.trials:  # other workers finish the budget
                time.sleep(1.0)
                continue
            before = done
            study.optimize(objective, n_trials=1, catch=(_EvaluationFailed,),
                           callbacks=callbacks)
            mine = _worker_name()
            last = max((t for t in study.get_trials(deepcopy=False)
                        if t.user_attrs.get("worker") == mine), key=lambda t: t.number)
            failed_in_a_row = failed_in_a_row + 1 if last.state == TrialState.FAIL else 0
            if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                raise SearchError(f"{failed_in_a_row} evaluations in a row failed; the last: "
                                  f"{last.user_attrs.get('error', 'unknown error')}")
            skipped_in_a_row = 0 if counts()[0] > before else skipped_in_a_row + 1
            if skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
                raise SearchSettingError(
                    "skip_margin", "{skipped} candidates in a row were beyond the target by "
                    "more than the skip margin; the target may be below what the space can "
                    "reach (raise it, or pass {what} off)", value=config.skip_margin,
                    skipped=MAX_SKIPPED_IN_A_ROW)
            update_best()
    finally:
        bar.close()


def _jsonable(config: SearchConfig) -> dict[str, Any]:
    skip = ("progress", "heartbeat_s", "grace_s")
    return {k: v for k, v in asdict(config).items() if k not in skip}
