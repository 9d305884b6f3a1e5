"""A search ends by timing its finalists against the reference (on a fake clock here) and
names the most accurate that measures within the target; tables imported from a device skip it
in one line; the CLI words bad targets with its flag."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable
from mobile_nas.cost.latency.relative import time_against_reference
from mobile_nas.cost.latency.settings import ProfileSettings
from mobile_nas.search.finalists import finalist_records, timing_protocol
from mobile_nas.search.runner import SearchConfig, run_search
from mobile_nas.space import get_space
from tests.cost.latency.fakes import FakeClock, FakeNet, local_table
from tests.search.conftest import WidthEvaluator

SETTINGS = ProfileSettings(rounds=2, runs_per_round=2, warmup=1)


@pytest.fixture(scope="module")
def here_table(tmp_path_factory):
    """A complete fmnist28 table "timed on this machine" (fake layer times)."""
    space = get_space("fmnist28")
    path = tmp_path_factory.mktemp("lut") / "here.json"
    local_table(space, space.enumerate_layers(), SETTINGS).save(path)
    return path


def _fake_timer(table_path, *, slow=lambda index: 1.0, calls=None):
    """A finalist timer whose networks take their predicted ms times ``slow(i)`` (``i``: the
    candidate's rank, -1 for the reference), on a fake clock."""
    predict = LatencyPredictor(LatencyTable.load(table_path)).predict_ms

    def timer(candidates, reference, settings):
        if calls is not None:
            calls.append((list(candidates), reference, settings))
        rank = {a: i for i, a in reversed(list(enumerate(candidates)))}
        clock = FakeClock()
        return time_against_reference(
            candidates, reference, rounds=2, runs_per_round=1, warmup=0, timer=clock,
            session_factory=lambda a: FakeNet(clock, predict(a) * slow(rank.get(a, -1))))

    return timer


def _config(out, table, **kw):
    base = dict(space="fmnist28", strategy="random", trials=12, out_dir=str(out),
                table=str(table), storage="memory", seed=0, skip_margin=None,
                progress=False, verify_top=3, probe_reference=0)
    base.update(kw)
    return SearchConfig(**base)


def test_the_most_accurate_finalist_that_measures_within_the_target_becomes_best(
        tmp_path, here_table, fmnist28):
    calls = []
    result = run_search(_config(tmp_path, here_table, latency_target="1.5xfmnist28_mnasnet"),
                        evaluator=WidthEvaluator(space=fmnist28),
                        finalist_timer=_fake_timer(here_table, calls=calls,
                                                   slow=lambda i: 10.0 if i == 0 else 1.0))
    best = json.loads((tmp_path / "best.json").read_text())
    assert best == result.best
    target = best["latency_target"]
    assert target["reference"] == "fmnist28_mnasnet" and target["factor"] == 1.5
    assert best["reward_fn"]["targets"]["latency_ms"] == pytest.approx(target["target_ms"])
    assert target["target_ms"] == pytest.approx(1.5 * target["reference_predicted_ms"])
    (candidates, reference, settings), = calls
    assert str(reference) == target["reference_arch"]
    assert (settings.rounds, settings.runs_per_round) == (2, 2)  # the table's protocol
    v = best["verified"]
    assert len(candidates) == len(v["candidates"]) >= 2, "the search must find 2 feasible"
    # the predicted best measured 10x its prediction: over the target, so not chosen
    assert best["predicted_best"]["arch"] == str(candidates[0]) == v["candidates"][0]["arch"]
    assert v["candidates"][0]["within_target"] is False
    rest = v["candidates"][1:]
    chosen = max(rest, key=lambda c: c["accuracy"])
    assert best["arch"] == v["chosen"] == chosen["arch"] == result.verification.chosen_arch
    assert best["arch"] != best["predicted_best"]["arch"]
    assert best["accuracy"] == chosen["accuracy"] and best["trial"] != \
        best["predicted_best"]["trial"]
    ref_ms = v["reference_predicted_ms"]
    for c in rest:  # measured as predicted: the ratios agree
        assert c["within_target"] is True
        assert c["measured_ratio"] == pytest.approx(c["predicted_ratio"])
    assert v["candidates"][0]["measured_ratio"] == pytest.approx(
        10 * v["candidates"][0]["predicted_ratio"])
    assert best["predicted_best"]["latency_ms"] == pytest.approx(
        v["candidates"][0]["predicted_ratio"] * ref_ms)
    assert v["noise_pct"] == pytest.approx(0.0, abs=1e-9) and v["target_factor"] == 1.5
    assert v["protocol"]["repeats"] == 3 and "summary" in v


def test_a_millisecond_target_is_held_as_a_factor_of_the_first_reference(
        tmp_path, here_table, fmnist28):
    result = run_search(_config(tmp_path, here_table, latency_target_ms=1.4),
                        evaluator=WidthEvaluator(space=fmnist28),
                        finalist_timer=_fake_timer(here_table))
    v = result.best["verified"]
    assert v["reference"] == "fmnist28_mnasnet" and v["target_ms"] == 1.4
    assert v["target_factor"] == pytest.approx(1.4 / v["reference_predicted_ms"])
    # every finalist measured as predicted (within the target): the predicted best stays
    assert result.best["arch"] == result.best["predicted_best"]["arch"] == v["chosen"]


def test_no_finalist_within_the_target_keeps_the_predicted_best_and_says_so(
        tmp_path, here_table, fmnist28, capsys):
    result = run_search(_config(tmp_path, here_table, latency_target="1.5xfmnist28_mnasnet",
                                progress=True),
                        evaluator=WidthEvaluator(space=fmnist28),
                        finalist_timer=_fake_timer(here_table,
                                                   slow=lambda i: 10.0 if i >= 0 else 1.0))
    best = result.best
    assert best["verified"]["chosen"] is None and result.verification.chosen_arch is None
    assert best["arch"] == best["predicted_best"]["arch"]
    line = result.verification.summary()
    assert line.startswith("no finalist measured within the target 1.5x the reference")
    assert line.endswith("; keeping the predicted best")
    err = capsys.readouterr().err
    assert line in err and "target 1.5 x fmnist28_mnasnet = " in err


def test_when_no_finalist_is_within_the_target_the_next_ones_are_timed(
        tmp_path, here_table, fmnist28):
    """The first round's finalists all measure 1.65x the reference (over the 1.5x target),
    later ones as predicted: a second round times the next best feasible candidates whose
    predicted ratios, times the first round's median measured / predicted, still meet the
    target, and the most accurate of them is the pick."""
    predict = LatencyPredictor(LatencyTable.load(here_table)).predict_ms
    seen: list[list[str]] = []

    def timer(candidates, reference, settings):
        first = not seen
        seen.append([str(a) for a in candidates])
        clock = FakeClock()
        ref_ms = predict(reference)
        return time_against_reference(
            candidates, reference, rounds=2, runs_per_round=1, warmup=0, timer=clock,
            session_factory=lambda a: FakeNet(
                clock, 1.65 * ref_ms if first and a != reference else predict(a)))

    result = run_search(_config(tmp_path, here_table, latency_target="1.5xfmnist28_mnasnet",
                                trials=30, verify_top=2),
                        evaluator=WidthEvaluator(space=fmnist28), finalist_timer=timer)
    v = result.best["verified"]
    assert len(seen) == 2 and not set(seen[0]) & set(seen[1])
    (first,) = v["earlier_rounds"]
    assert [c["arch"] for c in first["candidates"]] == seen[0]
    assert all(c["measured_ratio"] == pytest.approx(1.65) and not c["within_target"]
               for c in first["candidates"])
    ratios = sorted(1.65 / c["predicted_ratio"] for c in first["candidates"])
    correction = (ratios[0] + ratios[1]) / 2  # the median of two
    assert [c["arch"] for c in v["candidates"]] == seen[1]
    for c in v["candidates"]:
        assert c["predicted_ratio"] * correction <= 1.5 + 1e-9
        assert c["measured_ratio"] == pytest.approx(c["predicted_ratio"])
    chosen = max(v["candidates"], key=lambda c: c["accuracy"])
    assert result.best["arch"] == v["chosen"] == chosen["arch"]
    assert "(round 2)" in result.verification.summary()


def test_a_probed_reference_moves_the_target_and_the_predicted_ratios(
        tmp_path, here_table, fmnist28):
    """The machine runs every network as the table predicts but the reference 1.25x: the
    probe places it there, the target moves with it, the finalists' predicted ratios equal the
    measured ones; a resumed search reuses the recorded probe instead of timing it again."""
    from mobile_nas.cost.latency.probe import probe_archs

    calls = []
    timer = _fake_timer(here_table, calls=calls, slow=lambda i: 1.25 if i == -1 else 1.0)
    config = _config(tmp_path, here_table, latency_target="1.5xfmnist28_mnasnet",
                     probe_reference=4, storage=None)
    result = run_search(config, evaluator=WidthEvaluator(space=fmnist28), finalist_timer=timer)
    target = result.best["latency_target"]
    probe = target["probe"]
    assert probe["shift"] == pytest.approx(1 / 1.25)
    assert target["reference_ms"] == pytest.approx(1.25 * target["reference_predicted_ms"])
    assert target["target_ms"] == pytest.approx(1.5 * target["reference_ms"])
    assert result.best["reward_fn"]["targets"]["latency_ms"] == pytest.approx(
        target["target_ms"])
    probes = [str(a) for a in probe_archs(fmnist28, 4)]
    assert [str(a) for a in calls[0][0]] == probes == probe["probes"]
    assert json.loads((tmp_path / "reference_probe.json").read_text()) == probe
    for c in result.best["verified"]["candidates"]:
        assert c["predicted_ratio"] == pytest.approx(c["measured_ratio"])
    # resumed: the probe is read back, only the finalists are timed again
    calls.clear()
    again = run_search(_config(tmp_path, here_table, latency_target="1.5xfmnist28_mnasnet",
                               probe_reference=4, storage=None, resume=True),
                       evaluator=WidthEvaluator(space=fmnist28), finalist_timer=timer)
    assert again.best["latency_target"] == target
    assert all([str(a) for a in candidates] != probes for candidates, _, _ in calls)
    # a recorded probe is reused only for the same reference, probe count and table
    from mobile_nas.search.runner import _stored_probe

    assert _stored_probe(tmp_path, config, again.target) is not None
    ref_ms = target["reference_predicted_ms"]
    other_table = dataclasses.replace(again.target, probe=None,
                                      reference_predicted_ms=2 * ref_ms)
    assert _stored_probe(tmp_path, config, other_table) is None
    assert _stored_probe(tmp_path, _config(tmp_path, here_table, probe_reference=5),
                         again.target) is None


def test_an_imported_devices_table_is_not_timed_here(tmp_path, table_path, fmnist28):
    import json

    def never(*args):
        raise AssertionError("timed finalists of another device's table")

    imported = tmp_path / "phone.json"
    data = json.loads(table_path.read_text())
    data["metadata"]["source"] = "mobile-nas lut import"
    imported.write_text(json.dumps(data))
    result = run_search(_config(tmp_path, imported, latency_target_ms=5.0),
                        evaluator=WidthEvaluator(space=fmnist28), finalist_timer=never)
    why = result.best["verified"]["skipped"]
    assert "another device" in why and "lut bundle --space fmnist28 --arch" in why
    assert "predicted_best" not in result.best
    assert result.verification.summary() == f"finalists not timed: {why}"
    # nor is the reference probed: a phone's reference is not this machine's
    probed = run_search(_config(tmp_path / "probe", imported, latency_target="fmnist28_mnasnet",
                                probe_reference=3), evaluator=WidthEvaluator(space=fmnist28),
                        finalist_timer=never)
    assert "probe" not in probed.best["latency_target"]
    assert not (tmp_path / "probe" / "reference_probe.json").exists()


def test_a_table_built_on_another_machine_is_timed_here_and_says_so(tmp_path, table_path):
    from mobile_nas.search.finalists import machine_note

    settings, why = timing_protocol(f"table:{table_path}")
    assert why is None and settings is not None
    note = machine_note(f"table:{table_path}")
    assert note.startswith("finalists timed on this machine, not the one that built the table")


def test_verify_top_zero_times_nothing(tmp_path, here_table, fmnist28):
    result = run_search(_config(tmp_path, here_table, latency_target_ms=5.0, verify_top=0),
                        evaluator=WidthEvaluator(space=fmnist28))
    assert result.verification is None and "verified" not in result.best


def test_finalists_are_the_best_distinct_feasible_trials():
    records = [{"number": i, "arch": a, "reward": r, "feasible": f}
               for i, (a, r, f) in enumerate([("a", 0.5, True), ("b", 0.9, False),
                                              ("c", 0.7, True), ("a", 0.8, True),
                                              ("d", 0.7, True), ("e", 0.1, True)])]
    top = finalist_records(records, 3)
    assert [(r["arch"], r["number"]) for r in top] == [("a", 3), ("c", 2), ("d", 4)]


def test_the_timing_protocol_is_this_machines(here_table, table_path):
    settings, why = timing_protocol(f"table:{here_table}")
    assert why is None and (settings.rounds, settings.warmup) == (2, 1)
    settings, why = timing_protocol("measured:onnxruntime:1thread", precision="int8")
    assert why is None and settings.precision == "int8" and settings.threads == 1
    settings, why = timing_protocol("custom")
    assert settings is None and "custom function" in why


def test_the_cli_words_a_bad_target_with_its_flag(run_cli, tmp_path, here_table):
    code, _, err = run_cli("search", "--space", "fmnist28", "--latency-target",
                           "0xfmnist28_mnasnet", "--table", str(here_table), "--trials", "2",
                           "--out", str(tmp_path / "r"))
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("mobile-nas: error: --latency-target '0xfmnist28_mnasnet': factor")
    code, _, err = run_cli("search", "--space", "fmnist28", "--latency-target",
                           "mobilenet_v2", "--table", str(here_table), "--trials", "2",
                           "--out", str(tmp_path / "r"), "--evaluator", "synflow")
    assert code == 2 and "belongs to space 'mobile224', not 'fmnist28'" in err
    code, _, err = run_cli("search", "--space", "fmnist28", "--latency-target",
                           "fmnist28_mnasnet", "--latency-target-ms", "1", "--trials", "2",
                           "--out", str(tmp_path / "r"))
    assert code == 2 and "not allowed with argument" in err
