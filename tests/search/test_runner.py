"""run_search end to end with a cheap evaluator: outputs, resume, kill -9, two workers."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from mobile_nas.search.runner import SearchConfig, SearchError, run_search
from tests.search.conftest import WidthEvaluator, macs_latency_ms

REPO = Path(__file__).resolve().parents[2]


def _config(out, **kw):
    base = dict(space="fmnist28", strategy="rl", trials=8, out_dir=str(out),
                latency_target_ms=5.0, progress=False, heartbeat_s=1, grace_s=3,
                # the LSTM's draws (not edits of one random start): 8 trials find a
                # feasible network under this target
                strategy_options={"batch_size": 2, "proposal": "sample"}, skip_margin=None)
    base.update(kw)
    return SearchConfig(**base)


def _state(out) -> dict:
    """The saved strategy state of run folder ``out``: its metadata, tensors put back."""
    from mobile_nas.search.sampler import STATE_FILE_TYPE
    from mobile_nas.weightfile import unpack_tensors

    tensors, meta = STATE_FILE_TYPE.load_safetensors(Path(out) / "strategy_state.safetensors")
    return {**meta, "state": unpack_tensors(meta["state"], tensors)}


def _complete(out):
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{out}/study.db")
    return study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))


def test_search_writes_every_output(tmp_path, width_evaluator):
    from mobile_nas.report.pareto import plot_run_pareto

    result = run_search(_config(tmp_path), evaluator=width_evaluator,
                        latency_fn=macs_latency_ms)
    assert result.trials == 8
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["feasible"] is True and best["latency_ms"] <= 5.0
    assert {"arch", "accuracy", "latency_ms", "macs", "params", "feasible"} <= set(best)
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == list(range(8))
    pareto = json.loads((tmp_path / "pareto.json").read_text())["trials"]
    assert pareto and all(p["arch"] in {r["arch"] for r in rows} for p in pareto)
    assert not (tmp_path / "pareto.png").exists()  # drawn by the report layer:
    assert plot_run_pareto(tmp_path) == tmp_path / "pareto.png"
    assert (tmp_path / "pareto.png").read_bytes()[:4] == b"\x89PNG"
    for t in _complete(tmp_path):
        assert {"arch", "accuracy", "latency_ms", "macs", "params", "reward"} <= set(
            t.user_attrs)
        assert t.values[0] == pytest.approx(t.user_attrs["reward"])
    assert max(float(r["reward"]) for r in rows if r["feasible"] == "True") == \
        pytest.approx(best["reward"])


def test_candidates_far_past_the_target_are_told_but_not_evaluated(tmp_path, fmnist28):
    class Counting(WidthEvaluator):
        seen: list = []

        def evaluate(self, arch):
            self.seen.append(arch)
            return super().evaluate(arch)

    evaluator = Counting(space=fmnist28)
    result = run_search(_config(tmp_path, trials=12, skip_margin=0.1), evaluator=evaluator,
                        latency_fn=macs_latency_ms)
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{tmp_path}/study.db")
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    complete = _complete(tmp_path)
    assert result.trials == len(complete) == 12 == len(evaluator.seen)
    assert pruned, "the random start proposes networks past 5.5 ms (1 ms per million MACs)"
    assert all(t.user_attrs["latency_ms"] > 5.5 and t.user_attrs["skipped"] is True and
               t.user_attrs["reward"] == 0.0 for t in pruned)
    assert all(t.user_attrs["latency_ms"] <= 5.5 for t in complete)
    assert result.skipped == len(pruned)
    assert json.loads((tmp_path / "best.json").read_text())["skipped"] == len(pruned)
    assert len(list(csv.DictReader((tmp_path / "trials.csv").open()))) == 12
    told = _state(tmp_path)["told"]
    assert set(told) == {t.number for t in complete + pruned}  # the controller learned both


def test_a_target_no_candidate_can_meet_ends_with_one_error(tmp_path, width_evaluator,
                                                            monkeypatch):
    import mobile_nas.search.runner as runner

    monkeypatch.setattr(runner, "MAX_SKIPPED_IN_A_ROW", 5)
    with pytest.raises(SearchError, match="5 candidates in a row were beyond the target"):
        run_search(_config(tmp_path, latency_target_ms=1e-6, skip_margin=0.1,
                           storage="memory"), evaluator=width_evaluator,
                   latency_fn=macs_latency_ms)


def test_stop_when_ends_the_search_before_its_trials(tmp_path, width_evaluator):
    seen: list[dict] = []
    result = run_search(_config(tmp_path, strategy="random", strategy_options={}, trials=50,
                                storage="memory"),
                        evaluator=width_evaluator, latency_fn=macs_latency_ms,
                        on_trial=seen.append, stop_when=lambda: len(seen) >= 5)
    assert result.trials == len(seen) == 5


def test_resume_continues_to_n_and_restores_the_controller(tmp_path, width_evaluator):
    run_search(_config(tmp_path, trials=6), evaluator=width_evaluator,
               latency_fn=macs_latency_ms)
    first = {t.number: t.user_attrs["arch"] for t in _complete(tmp_path)}
    saved = _state(tmp_path)
    assert saved["told"] == list(range(6)) and saved["state"]["updates"] == 3
    with pytest.raises(SearchError, match="already has 6 trials; pass resume") as info:
        run_search(_config(tmp_path, trials=10), evaluator=width_evaluator,
                   latency_fn=macs_latency_ms)
    assert (info.value.what, info.value.others) == ("resume", ("out_dir",))
    with pytest.raises(SearchError, match="strategy='rl', now strategy='random'"):
        run_search(_config(tmp_path, trials=10, strategy="random", resume=True,
                           strategy_options={}),
                   evaluator=width_evaluator, latency_fn=macs_latency_ms)
    run_search(_config(tmp_path, trials=10, resume=True), evaluator=width_evaluator,
               latency_fn=macs_latency_ms)
    trials = _complete(tmp_path)
    assert sorted(t.number for t in trials) == list(range(10))
    assert {t.number: t.user_attrs["arch"] for t in trials if t.number < 6} == first
    final = _state(tmp_path)
    assert final["state"]["updates"] == 5  # continued from 3 updates, not from scratch


@pytest.mark.parametrize("strategy", ["nsga2", "motpe"])
def test_pareto_strategies_use_objectives_and_constraints(tmp_path, width_evaluator, strategy):
    run_search(_config(tmp_path, strategy=strategy, trials=6, strategy_options={}),
               evaluator=width_evaluator, latency_fn=macs_latency_ms)
    trials = _complete(tmp_path)
    assert all(len(t.values) == 2 for t in trials)
    assert all(t.values[0] == pytest.approx(t.user_attrs["accuracy"]) for t in trials)
    assert all(t.values[1] == pytest.approx(t.user_attrs["latency_ms"]) for t in trials)
    # the target (5 ms) is a constraint: latency / target - 1, feasible at or below 0
    for t in trials:
        constraint = next(v for k, v in t.system_attrs.items() if k.endswith(":latency_ms"))
        assert constraint == pytest.approx(t.user_attrs["latency_ms"] / 5.0 - 1.0)
        assert (constraint <= 0) == t.user_attrs["feasible"]


@pytest.mark.parametrize("strategy, names", [("nsga2", ["accuracy", "latency_ms"]),
                                              ("rl", ["reward"])])
def test_the_study_names_its_objectives_for_optuna_dashboard(tmp_path, width_evaluator,
                                                             strategy, names):
    run_search(_config(tmp_path, strategy=strategy, trials=2, strategy_options={}),
               evaluator=width_evaluator, latency_fn=macs_latency_ms)
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{tmp_path}/study.db")
    assert study.metric_names == names


def test_a_zero_cost_score_and_a_macs_target_are_named_as_they_are():
    from mobile_nas.search.rewards import make_reward
    from mobile_nas.search.runner import objective_names

    reward = make_reward(latency_target_ms=5.0, macs_target=1e6, kind="hard")
    assert objective_names(reward, multi=True, score_not_accuracy=True) == [
        "score", "latency_ms", "macs"]


def _worker(out, storage, trials, strategy="rl", delay_s=0.3, die_at=None, **env_over):
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_over}
    args = [str(out), storage, str(trials), strategy, str(delay_s)]
    if die_at is not None:
        args.append(str(die_at))  # SIGKILLs itself inside that evaluation
    return subprocess.Popen([sys.executable, "-m", "tests.search._worker", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_kill_9_then_resume_loses_and_repeats_nothing(tmp_path, width_evaluator):
    db = tmp_path / "study.db"
    # the worker SIGKILLs itself in the middle of its 6th trial
    proc = _worker(tmp_path, f"sqlite:///{db}", 40, delay_s=0.05, die_at=6)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    before = {t.number: t.user_attrs["arch"] for t in _complete(tmp_path)}
    assert len(before) == 5
    saved = _state(tmp_path)
    assert saved["state"]["updates"] >= 1
    run_search(_config(tmp_path, trials=len(before) + 4, resume=True),
               evaluator=width_evaluator, latency_fn=macs_latency_ms)
    after = _complete(tmp_path)
    assert len(after) == len(before) + 4
    assert len({t.number for t in after}) == len(after)
    assert {t.number: t.user_attrs["arch"] for t in after if t.number in before} == before
    final = _state(tmp_path)
    assert final["state"]["updates"] > saved["state"]["updates"]
    assert set(final["told"]) == {t.number for t in after}


def test_two_workers_share_one_study(tmp_path):
    """Ordered by events, not by timing: the workers meet inside their 2nd evaluations (so
    both hold trials, and each one's first trial is finished) and again inside their 3rd
    (so each asked for its 3rd candidate after the other's first trial had finished, and
    was told it); a grace period longer than the test keeps a worker that the machine
    pauses from having its running trial failed by the other."""
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    meet = tmp_path / "meet"
    meet.mkdir()
    procs = [_worker(tmp_path / f"w{i}", storage, 12, delay_s=0.05, WORKER_GRACE_S="3600",
                     WORKER_MEET_DIR=str(meet), WORKER_MEET_N="2", WORKER_MEET_AT="2,3")
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    study = optuna.load_study(study_name="search", storage=storage)
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert 12 <= len(done) <= 13  # the budget, plus at most one trial raced by both
    assert len({t.user_attrs["worker"] for t in done}) == 2
    for i, p in enumerate(procs):  # each controller also learned from the other's trials
        own = {t.number for t in done if t.user_attrs["worker"].endswith(f":{p.pid}")}
        told = set(_state(tmp_path / f"w{i}")["told"])
        assert own and told - own, (own, told)


def test_a_worker_joining_a_study_draws_its_own_candidates(tmp_path, width_evaluator,
                                                           monkeypatch):
    import mobile_nas.search.runner as runner

    storage = f"sqlite:///{tmp_path}/shared.db"
    kw = dict(strategy="random", strategy_options={}, storage=storage)
    monkeypatch.setattr(runner, "_worker_name", lambda: "host:1")
    first = run_search(_config(tmp_path / "w1", trials=5, **kw), evaluator=width_evaluator,
                       latency_fn=macs_latency_ms)
    monkeypatch.setattr(runner, "_worker_name", lambda: "host:2")
    second = run_search(_config(tmp_path / "w2", trials=10, resume=True, **kw),
                        evaluator=width_evaluator, latency_fn=macs_latency_ms)
    assert first.seed == 0 and second.seed != 0
    study = optuna.load_study(study_name="search", storage=storage)
    assert study.user_attrs["seed:host:1"] == 0
    assert study.user_attrs["seed:host:2"] == second.seed
    archs = [t.user_attrs["arch"] for t in sorted(study.get_trials(
        states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.number)]
    assert len(archs) == 10
    # with one seed for both, the joiner would have drawn the first worker's 5 networks again
    assert archs[5:] != archs[:5]
    # an explicit seed is kept, joining or not
    third = run_search(_config(tmp_path / "w3", trials=12, resume=True, seed=7, **kw),
                       evaluator=width_evaluator, latency_fn=macs_latency_ms)
    assert third.seed == 7


def test_a_failing_evaluation_fails_its_trial_and_the_search_goes_on(tmp_path, fmnist28):
    class Flaky(WidthEvaluator):
        calls = 0

        def evaluate(self, arch):
            self.calls += 1
            if self.calls % 3 == 0:
                raise RuntimeError("CUDA out of memory (simulated)")
            return super().evaluate(arch)

    result = run_search(_config(tmp_path, trials=6), evaluator=Flaky(space=fmnist28),
                        latency_fn=macs_latency_ms)
    assert result.trials == 6
    study = optuna.load_study(study_name="search", storage=f"sqlite:///{tmp_path}/study.db")
    failed = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert len(failed) == 2  # calls 3 and 6 of 8
    assert all(t.user_attrs["error"] == "RuntimeError: CUDA out of memory (simulated)" and
               "arch" in t.user_attrs for t in failed)


def test_evaluations_that_keep_failing_end_the_search_with_the_reason(tmp_path, fmnist28):
    class Broken(WidthEvaluator):
        def evaluate(self, arch):
            raise ValueError("weights are NaN")

    with pytest.raises(SearchError, match="5 evaluations in a row failed; the last: "
                                          "ValueError: weights are NaN"):
        run_search(_config(tmp_path, storage="memory"), evaluator=Broken(space=fmnist28),
                   latency_fn=macs_latency_ms)


def test_workers_opening_a_fresh_database_together_retry_the_table_race(monkeypatch):
    """Four workers started at once on a fresh PostgreSQL race to create Optuna's tables; the
    loser sees a duplicate-key error, which must mean "retry", not "unusable storage"."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    from mobile_nas.search import runner

    calls = []

    def fake_storage(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise IntegrityError("CREATE TYPE trialstate", {}, Exception(
                'duplicate key value violates unique constraint "pg_type_typname_nsp_index"'))
        return "opened"

    monkeypatch.setattr(runner.time, "sleep", lambda s: None)
    monkeypatch.setattr(optuna.storages, "RDBStorage", fake_storage)
    assert runner._open_storage("postgresql://u@h/db", 1, 3) == "opened"
    assert len(calls) == 2

    def refused(url, **kwargs):  # a server that is not there is not a race: one error line
        calls.append(url)
        raise OperationalError("connect", {}, Exception("connection refused"))

    calls.clear()
    monkeypatch.setattr(optuna.storages, "RDBStorage", refused)
    with pytest.raises(SearchError, match="cannot open storage .*connection refused"):
        runner._open_storage("postgresql://u@h/db", 1, 3)
    assert len(calls) == 1


@pytest.mark.parametrize("name, shown, hidden", [("zero-cost:naswot", "score=", "%"),
                                                 ("supernet", "acc=", "score=")])
def test_the_progress_bar_shows_a_zero_cost_score_as_a_score(tmp_path, fmnist28, capsys,
                                                             name, shown, hidden):
    class Named(WidthEvaluator):  # scores 0.5-0.8: as a percentage "acc=63.40%"
        def describe(self):
            return {"name": name}

    run_search(_config(tmp_path, trials=3, progress=True, latency_target_ms=1e9),
               evaluator=Named(space=fmnist28), latency_fn=macs_latency_ms)
    # the bar's last state: its last redraw on a terminal, its last line in a log
    bar = [s for s in re.split(r"[\r\n]", capsys.readouterr().err) if "best feasible" in s][-1]
    assert "best feasible " + shown in bar and hidden not in bar.split("best feasible")[1]
