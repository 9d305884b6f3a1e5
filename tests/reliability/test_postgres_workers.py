"""Scale-out: four search workers on one PostgreSQL study, one of them SIGKILLed mid-trial.

The study must still reach its trial count, with every finished trial recorded once and the
killed worker's running trial failed by Optuna's heartbeat (not lost, not counted).

Events order the test, not timing windows: the victim dies alone on the study at a fixed
evaluation; its trial is failed by the heartbeat while no live worker holds a trial (so no
paused live worker can be taken for dead); the other workers meet inside their first
evaluations (so each finishes trials however slowly it started) and have a grace period
longer than the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.reliability.postgres import postgres_bin, throwaway_cluster
from tests.reliability.record import record

REPO = Path(__file__).resolve().parents[2]
TRIALS = 24
WORKERS = 4
DIE_AT = 3

pytestmark = pytest.mark.skipif(
    postgres_bin() is None and not os.environ.get("CI"),
    reason="PostgreSQL server binaries are not installed (apt-get install postgresql); "
           ".ci/run installs them, so CI always runs this test",
)


def _worker(out: Path, storage: str, delay_s: float, die_at: int | None = None,
            **env_over: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_over}
    args = [str(out), storage, str(TRIALS), "rl", str(delay_s)]
    if die_at is not None:
        args.append(str(die_at))
    return subprocess.Popen([sys.executable, "-m", "tests.search._worker", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _fail_dead_workers_trials(storage: str) -> None:
    """Optuna's heartbeat check (``fail_stale_trials``, 1 s grace) until no trial is left
    RUNNING; called while no live worker holds a trial, so only a dead one's can be."""
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, fail_stale_trials

    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna's words
        warnings.simplefilter("ignore", ExperimentalWarning)
        study = optuna.load_study(study_name="search", storage=RDBStorage(
            storage, heartbeat_interval=1, grace_period=1))
        deadline = time.monotonic() + 300  # a guard: a dead worker's heartbeat ages in 1 s
        while any(t.state.name == "RUNNING" for t in study.get_trials(deepcopy=False)):
            assert time.monotonic() < deadline, "the killed worker's trial never went stale"
            fail_stale_trials(study)
            time.sleep(0.2)


def test_four_workers_on_postgresql_survive_a_killed_worker(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with throwaway_cluster() as storage:
        # worker 0 SIGKILLs itself inside its 3rd evaluation, i.e. while it holds a
        # RUNNING trial, after it has finished trials of its own
        victim = _worker(tmp_path / "w0", storage, delay_s=0.05, die_at=DIE_AT)
        victim.wait(timeout=300)
        assert victim.returncode == -signal.SIGKILL, victim.stderr.read().decode()[-2000:]
        _fail_dead_workers_trials(storage)
        meet = tmp_path / "meet"
        meet.mkdir()
        procs = [victim] + [
            _worker(tmp_path / f"w{i}", storage, delay_s=0.05, WORKER_GRACE_S="3600",
                    WORKER_MEET_DIR=str(meet), WORKER_MEET_N=str(WORKERS - 1),
                    WORKER_MEET_AT="1")
            for i in range(1, WORKERS)]
        for p in procs[1:]:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-2000:]

        study = optuna.load_study(study_name="search", storage=storage)
        trials = study.get_trials(deepcopy=False)
        done = [t for t in trials if t.state.name == "COMPLETE"]
        # the budget is reached; racing workers may each finish one trial past it
        assert TRIALS <= len(done) <= TRIALS + WORKERS - 1
        assert len({t.number for t in done}) == len(done)
        assert all({"arch", "accuracy", "latency_ms", "reward"} <= set(t.user_attrs)
                   for t in done)
        # the killed worker's unfinished trials were failed by the heartbeat, never completed
        victim_trials = [t for t in trials
                         if str(t.user_attrs.get("worker", "")).endswith(f":{victim.pid}")]
        unfinished = [t for t in victim_trials if t.state.name != "COMPLETE"]
        assert unfinished and all(t.state.name == "FAIL" for t in unfinished)
        assert sum(t.state.name == "COMPLETE" for t in victim_trials) == DIE_AT - 1
        killed_trial = min(t.number for t in unfinished)
        assert not any(t.state.name == "RUNNING" for t in trials)
        workers = {t.user_attrs["worker"] for t in done}
        record("scale_out", storage="postgresql (throw-away cluster)", workers=WORKERS,
               killed_workers=1, target_trials=TRIALS, complete=len(done),
               failed=sum(t.state.name == "FAIL" for t in trials),
               distinct_numbers=len({t.number for t in done}), killed_trial=killed_trial,
               workers_with_trials=len(workers))
        assert len(workers) == WORKERS  # the victim finished trials before it died
