"""The build's sentinel on the fake backend: a disturbance injected into one chunk's timing
is detected, the chunk re-timed and the event logged; every number is exact."""

import dataclasses
import json

import pytest

from mobile_nas.cost.latency import LatencyTable, LayerLatency
from mobile_nas.cost.latency.profiler import (
    MAX_RETIMES,
    MIN_NOISE_FLOOR_PCT,
    SENTINEL_REPEATS,
    build_table,
    noise_floor_pct,
    timing_order,
)
from mobile_nas.cost.latency.sentinel import SENTINEL_MODEL
from mobile_nas.cost.latency.settings import ProfileSettings

from .fakes import FakeMachine, layer_ms

SETTINGS = ProfileSettings(rounds=2, runs_per_round=2, warmup=1, chunk=2)
N = SETTINGS.rounds * SETTINGS.runs_per_round  # timed runs per key and timing


@pytest.fixture
def keys(fmnist):
    """Six keys, timed in 3 chunks of 2 in :func:`timing_order`."""
    return fmnist.enumerate_layers()[:6]


def _exact(keys):
    """Entries of an undisturbed machine: the sentinel takes 1 ms, so each entry's anchor
    fraction is its time in ms."""
    return {k.id: LayerLatency(median_ms=layer_ms(k), iqr_ms=0.0, n=N, min_ms=layer_ms(k),
                               anchor_fraction=layer_ms(k)) for k in keys}


def test_noise_floor_from_the_sentinels_own_repeats():
    assert noise_floor_pct([1.0] * 5) == (1.0, MIN_NOISE_FLOOR_PCT)  # never 0
    base, floor = noise_floor_pct([1.0, 1.03, 0.97, 1.0, 2.0])
    # the farthest repeat (2.0) is set aside; twice the next largest deviation (3%)
    assert base == 1.0 and floor == pytest.approx(6.0)


def test_a_quiet_build_logs_no_event(tmp_path, keys):
    machine = FakeMachine(SETTINGS)
    table = build_table("fmnist28", keys, tmp_path / "t.json", settings=SETTINGS,
                        progress=False, backend=machine.backend())
    assert dict(table.entries) == _exact(keys)
    s = table.metadata["sentinel"]
    assert s["model"] == SENTINEL_MODEL and s["statistic"] == "wall-clock median"
    assert s["events"] == []
    run, = s["runs"]
    assert run["repeats_ms"] == [1.0] * SENTINEL_REPEATS and run["baseline_ms"] == 1.0
    assert (run["noise_floor_pct"], run["chunks"], run["retimed"]) == (MIN_NOISE_FLOOR_PCT, 3, 0)
    # the first chunk is timed SENTINEL_REPEATS times, the others once
    assert machine.timing == SENTINEL_REPEATS + 2 - 1


def test_a_disturbed_chunk_is_retimed_and_logged(tmp_path, keys):
    first = SENTINEL_REPEATS  # timings 0-4: first chunk; 5: second chunk; 6: third chunk
    machine = FakeMachine(SETTINGS, slow=lambda t: 1.5 if t == first + 1 else 1.0)
    out = tmp_path / "t.json"
    table = build_table("fmnist28", keys, out, settings=SETTINGS, progress=False,
                        backend=machine.backend())
    # the disturbed timing (every run 1.5x) is not what the table keeps
    assert dict(table.entries) == _exact(keys)
    s = json.loads(out.read_text())["metadata"]["sentinel"]
    assert s["events"] == [{
        "run": 0, "chunk": 2, "first_key": timing_order(keys)[4].id, "keys": 2, "baseline_ms": 1.0,
        "noise_floor_pct": MIN_NOISE_FLOOR_PCT, "sentinel_ms": [1.5, 1.0],
        "deviation_pct": [50.0, 0.0], "kept": 1, "resolved": True}]
    assert s["runs"][0]["retimed"] == 1
    assert LatencyTable.load(out).entries == table.entries


def test_a_machine_that_stays_disturbed_keeps_the_nearest_attempt(tmp_path, keys):
    first = SENTINEL_REPEATS
    # chunk 1: 1.5x, then 1.2x, then 1.3x (never back within the floor)
    factors = {first: 1.5, first + 1: 1.2, first + 2: 1.3}
    machine = FakeMachine(SETTINGS, slow=lambda t: factors.get(t, 1.0))
    table = build_table("fmnist28", keys, tmp_path / "t.json", settings=SETTINGS,
                        progress=False, backend=machine.backend())
    event, = table.metadata["sentinel"]["events"]
    assert event["sentinel_ms"] == [1.5, 1.2, 1.3] and len(event["sentinel_ms"]) == \
        1 + MAX_RETIMES
    assert event["kept"] == 1 and event["resolved"] is False and event["chunk"] == 1
    order = timing_order(keys)
    kept = {k.id: LayerLatency(median_ms=round(layer_ms(k) * 1.2, 6), iqr_ms=0.0, n=N,
                               min_ms=round(layer_ms(k) * 1.2, 6)) for k in order[2:4]}
    for kid, entry in kept.items():
        assert table.entries[kid].median_ms == pytest.approx(entry.median_ms)
    assert {k.id: table.entries[k.id] for k in order[:2] + order[4:]} == \
        {k: v for k, v in _exact(keys).items() if k not in kept}


def test_one_disturbed_baseline_repeat_neither_moves_nor_widens_the_floor(tmp_path, keys):
    machine = FakeMachine(SETTINGS, slow=lambda t: 3.0 if t == 2 else 1.0)
    table = build_table("fmnist28", keys, tmp_path / "t.json", settings=SETTINGS,
                        progress=False, backend=machine.backend())
    run = table.metadata["sentinel"]["runs"][0]
    assert run["repeats_ms"] == [1.0, 1.0, 3.0, 1.0, 1.0]
    assert (run["baseline_ms"], run["noise_floor_pct"]) == (1.0, MIN_NOISE_FLOOR_PCT)
    assert dict(table.entries) == _exact(keys)  # the kept first-chunk timing is a quiet one


def test_resume_appends_a_run_and_keeps_old_events(tmp_path, keys):
    out = tmp_path / "t.json"
    first = SENTINEL_REPEATS
    machine = FakeMachine(SETTINGS, slow=lambda t: 1.5 if t == first else 1.0)
    build_table("fmnist28", keys[:4], out, settings=SETTINGS, progress=False,
                backend=machine.backend())
    again = FakeMachine(SETTINGS, sentinel_ms=2.0)  # another machine state: a new baseline
    table = build_table("fmnist28", keys, out, settings=SETTINGS, progress=False,
                        resume=True, backend=again.backend())
    s = table.metadata["sentinel"]
    assert [r["baseline_ms"] for r in s["runs"]] == [1.0, 2.0]
    assert [e["run"] for e in s["events"]] == [0]
    assert sorted(again.opened) == sorted(k.id for k in keys[4:])  # only the missing keys
    # entries are fractions of the sentinel timed in their own chunk (2 ms in the resumed run)
    expected = {**_exact(keys[:4]), **{k: dataclasses.replace(v, anchor_fraction=v.median_ms / 2)
                                       for k, v in _exact(keys[4:]).items()}}
    assert dict(table.entries) == expected
