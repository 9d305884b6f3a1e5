"""On-demand profiling on the fake backend: missing layers are timed once with the table's
protocol, scaled to its timebase and merged into the file (no real timing anywhere)."""

import multiprocessing
import os

import pytest

from mobile_nas.cost.latency import (
    Calibration,
    HeldOutCheck,
    LatencyTable,
    LatencyTableError,
    LayerLatency,
    ensure_usable,
    ondemand,
)
from mobile_nas.cost.latency.ondemand import (
    ForeignTableError,
    OnDemandPredictor,
    add_entries,
    check_extendable,
    choose_anchors,
    prepare_extension,
    table_profile_settings,
)
from mobile_nas.cost.latency.requirements import table_settings
from mobile_nas.cost.latency.settings import ProfileSettings
from mobile_nas.space.layers import LayerKey

from .fakes import FakeMachine, layer_ms, local_table

SETTINGS = ProfileSettings(rounds=2, runs_per_round=2, warmup=1)


def _keys(space, *seeds):
    return sorted({k for s in seeds for k in space.runtime_layers(space.sample(s))})


@pytest.fixture
def checked():
    """A (made-up) calibration with a held-out check."""
    return Calibration(overhead_ms=0.02, scale=1.1, per_layer_ms=0.001, coefficients=3,
                       archs=("a", "b", "c", "d"), measured_ms=(0.3, 0.2, 0.25, 0.3),
                       held_out=HeldOutCheck(archs=("e", "f"), measured_ms=(0.2, 0.3),
                                             predicted_ms=(0.21, 0.3)))


def test_missing_layers_are_timed_once_scaled_and_cached(tmp_path, fmnist, checked):
    path = tmp_path / "t.json"
    # built when the machine ran twice as slowly as the fake one runs now
    local_table(fmnist, _keys(fmnist, 0, 1), SETTINGS, factor=2.0,
                calibration=checked).save(path)
    arch = fmnist.sample(2)
    keys = fmnist.runtime_layers(arch)
    missing = LatencyTable.load(path).missing(keys)
    assert missing and len(missing) < len(set(keys))
    machine, lines = FakeMachine(SETTINGS), []
    predictor = OnDemandPredictor(path, backend=machine.backend(), report=lines.append)
    got = predictor.predict(arch)
    run, = predictor.runs
    assert sorted(run.keys) == sorted(missing) and run.scale == pytest.approx(2.0)
    # the anchors (the arch's own entries first) and the missing keys were timed, once
    assert sorted(machine.opened) == sorted([*run.anchors, *missing])
    own = list(dict.fromkeys(k.id for k in keys if k.id not in missing))
    assert list(run.anchors[:len(own)]) == own[:len(run.anchors)]
    table = LatencyTable.load(path)
    for k in missing:
        assert table.entries[k].median_ms == pytest.approx(2.0 * layer_ms(LayerKey.from_id(k)))
    # the calibration keeps applying to the layer sum
    total = sum(2.0 * layer_ms(k) for k in keys)
    assert got.total_ms == pytest.approx(checked.apply(total, len(keys)))
    assert table.calibration == checked
    rec = table.metadata["on_demand"]
    assert (rec["entries"], rec["runs"], rec["keys"]) == (len(missing), 1, sorted(missing))
    assert rec["events"][0]["keys"] == len(missing) and rec["events"][0]["scale"] == 2.0
    assert rec["first"] == rec["last"] == rec["events"][0]["date"]
    assert lines[0].startswith(f"latency table: timed {len(missing)} missing layers")
    assert any("as long as when it was built" in line for line in lines)  # drift reported
    # the cached table still loads and passes its checks, with its protocol unchanged
    ensure_usable(table, path=path)
    assert table_settings(table) == table_settings(local_table(fmnist, [], SETTINGS))
    assert ondemand.summary(table).startswith(f"{len(missing)} entries added on demand")
    # a second search (new process, new machine) times nothing
    again = FakeMachine(SETTINGS)
    second = OnDemandPredictor(path, backend=again.backend())
    assert second.predict(arch).total_ms == pytest.approx(got.total_ms)
    assert again.opened == [] and second.runs == []


def test_entries_another_worker_added_are_reused_not_retimed(tmp_path, fmnist):
    path = tmp_path / "t.json"
    local_table(fmnist, _keys(fmnist, 0), SETTINGS).save(path)
    arch = fmnist.sample(3)
    mine = OnDemandPredictor(path, backend=FakeMachine(SETTINGS).backend())
    other = FakeMachine(SETTINGS)
    OnDemandPredictor(path, backend=other.backend()).predict(arch)  # another worker
    assert other.opened
    machine = FakeMachine(SETTINGS)
    mine.backend = machine.backend()
    mine.predict(arch)
    assert machine.opened == [] and mine.runs == []


def test_an_entry_already_there_wins(tmp_path, fmnist):
    path = tmp_path / "t.json"
    keys = _keys(fmnist, 0)
    local_table(fmnist, keys[1:], SETTINGS).save(path)
    event = {"date": "2026-01-01T00:00:00Z", "seconds": 1.0}
    first = {keys[0].id: LayerLatency(median_ms=1.0, iqr_ms=0.0, n=4, min_ms=1.0)}
    second = {keys[0].id: LayerLatency(median_ms=9.0, iqr_ms=0.0, n=4, min_ms=9.0)}
    _, added = add_entries(path, first, settings=SETTINGS, event=event)
    table, again = add_entries(path, second, settings=SETTINGS, event=event)
    assert added == [keys[0].id] and again == []
    assert table.entries[keys[0].id].median_ms == 1.0
    assert (table.metadata["on_demand"]["entries"], table.metadata["on_demand"]["runs"]) == (1, 2)


def _add_many(path: str, ids: list[str]) -> None:
    event = {"date": "2026-01-01T00:00:00Z", "seconds": 0.0}
    for i in ids:
        add_entries(path, {i: LayerLatency(median_ms=1.0, iqr_ms=0.0, n=4, min_ms=1.0)},
                    settings=SETTINGS, event=event)


def test_concurrent_workers_keep_each_others_entries(tmp_path, fmnist):
    path = tmp_path / "t.json"
    keys = [k.id for k in fmnist.enumerate_layers()[:40]]
    local_table(fmnist, [], SETTINGS).save(path)
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_add_many, args=(str(path), keys[i::2])) for i in (0, 1)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    table = LatencyTable.load(path)
    assert sorted(table.entries) == sorted(keys)
    assert table.metadata["on_demand"]["runs"] == 40
    assert table.metadata["num_keys"] == 40


def test_a_table_of_another_device_is_refused_in_one_line(tmp_path, fmnist):
    table = local_table(fmnist, _keys(fmnist, 0), SETTINGS, device="pixel-7",
                        cpu="Qualcomm Technologies, Inc SM8450")
    with pytest.raises(ForeignTableError) as exc:
        check_extendable(table, tmp_path / "phone.json")
    text = str(exc.value)
    assert "timed on another machine (device 'pixel-7'" in text and "cpu 'Qualcomm" in text
    assert "mobile-nas lut bundle --space fmnist28 --arch ARCH" in text
    assert "\n" not in text


def test_a_table_that_does_not_record_its_machine_is_refused(tmp_path, fmnist):
    table = LatencyTable(space="fmnist28", metadata={"device": "synthetic"})
    with pytest.raises(ForeignTableError, match="another machine"):
        check_extendable(table, tmp_path / "t.json")


def test_the_protocol_is_the_tables_own(fmnist):
    table = local_table(fmnist, [], ProfileSettings(clock="cpu", statistic="min", rounds=7,
                                                    runs_per_round=2, warmup=3))
    s = table_profile_settings(table)
    assert (s.clock, s.statistic, s.rounds, s.runs_per_round, s.warmup, s.threads) == \
        ("cpu", "min", 7, 2, 3, 1)
    bad = table.with_metadata(threads=2)  # the cpu clock times one thread
    with pytest.raises(LatencyTableError, match="cannot be timed here"):
        table_profile_settings(bad)


def test_anchors_prefer_the_candidates_own_entries(fmnist):
    table = local_table(fmnist, fmnist.enumerate_layers()[:100], SETTINGS)
    ids = sorted(table.entries)
    got = choose_anchors(table, [ids[50], "not-there", ids[7]], n=4)
    assert got[:2] == [ids[50], ids[7]] and len(got) == 4 and len(set(got)) == 4
    assert choose_anchors(local_table(fmnist, [], SETTINGS), ids) == []


def test_a_shipped_table_is_extended_in_a_cache_copy(tmp_path, fmnist, monkeypatch):
    shipped = tmp_path / "pkg" / "fmnist28.json"
    shipped.parent.mkdir()
    local_table(fmnist, _keys(fmnist, 0), SETTINGS, factor=2.0).save(shipped)
    before = shipped.read_bytes()
    monkeypatch.setattr(ondemand, "shipped_table_path",
                        lambda space, precision="fp32": shipped if precision == "fp32" else None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    target = prepare_extension("fmnist28", shipped)
    assert target == tmp_path / "cache" / "mobile-nas" / "latency_tables" / "fmnist28.json"
    OnDemandPredictor(target, backend=FakeMachine(SETTINGS).backend()).predict(fmnist.sample(4))
    assert shipped.read_bytes() == before  # never written
    copy = LatencyTable.load(target)
    assert len(copy) > len(LatencyTable.load(shipped))
    assert copy.metadata["on_demand"]["base"]["path"] == str(shipped)
    assert prepare_extension("fmnist28", shipped) == target
    assert len(LatencyTable.load(target)) == len(copy)  # reused
    # cost, export and report (no run, no --table) see the extended copy too
    from mobile_nas.cost.latency.ondemand import resolve_table

    assert resolve_table("fmnist28") == target
    assert resolve_table("fmnist28", str(shipped)) == str(shipped)  # an explicit table wins
    # a new shipped table (another release) starts a new copy; the stale one is not used
    LatencyTable.load(shipped).with_metadata(date="later").save(shipped)
    assert resolve_table("fmnist28") != target
    prepare_extension("fmnist28", shipped)
    fresh = LatencyTable.load(target)
    assert len(fresh) == len(LatencyTable.load(shipped)) and fresh.metadata["date"] == "later"
    assert fresh.metadata["on_demand"]["runs"] == 0


def test_a_shipped_int8_table_is_extended_in_its_own_cache_copy(tmp_path, fmnist,
                                                                monkeypatch):
    shipped = {"fp32": tmp_path / "pkg" / "fmnist28.json",
               "int8": tmp_path / "pkg" / "fmnist28_int8.json"}
    shipped["fp32"].parent.mkdir()
    for path in shipped.values():
        local_table(fmnist, _keys(fmnist, 0), SETTINGS).save(path)
    before = shipped["int8"].read_bytes()
    monkeypatch.setattr(ondemand, "shipped_table_path",
                        lambda space, precision="fp32": shipped[precision])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    target = prepare_extension("fmnist28", shipped["int8"])
    assert target == tmp_path / "cache" / "mobile-nas" / "latency_tables" / "fmnist28_int8.json"
    OnDemandPredictor(target, backend=FakeMachine(SETTINGS).backend()).predict(fmnist.sample(4))
    assert shipped["int8"].read_bytes() == before  # the package's file is never written
    assert ondemand.extended_shipped_table("fmnist28", "int8") == target
    assert ondemand.extended_shipped_table("fmnist28") is None  # the fp32 one has no copy


def test_lut_build_resume_keeps_the_on_demand_record(tmp_path, fmnist):
    from mobile_nas.cost.latency.profiler import build_table

    path = tmp_path / "t.json"
    local_table(fmnist, _keys(fmnist, 0), SETTINGS).save(path)
    OnDemandPredictor(path, backend=FakeMachine(SETTINGS).backend()).predict(fmnist.sample(5))
    record = LatencyTable.load(path).metadata["on_demand"]
    more = fmnist.enumerate_layers()[:3]
    table = build_table("fmnist28", more, path, settings=SETTINGS, resume=True,
                        progress=False, backend=FakeMachine(SETTINGS).backend())
    assert table.metadata["on_demand"] == record
    assert os.path.exists(path)


def test_a_legacy_table_keeps_its_clock_statistic_and_legacy_calibration(tmp_path, fmnist):
    import json

    from mobile_nas.cost.latency import LatencyStatistic

    settings = ProfileSettings(rounds=2, runs_per_round=2, warmup=1, clock="cpu",
                               statistic="min")
    doc = local_table(fmnist, _keys(fmnist, 0), settings).to_json()
    doc["schema_version"] = 1  # as shipped: an in-sample calibration on the layer statistic
    doc["calibration"] = {"overhead_ms": 0.1, "scale": 1.0, "archs": ["a", "b", "c"],
                          "measured_ms": [1.0, 2.0, 3.0], "fit_mape": 1.0}
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(doc))
    machine = FakeMachine(settings)
    arch = fmnist.sample(6)
    got = OnDemandPredictor(path, backend=machine.backend()).predict(arch)
    table = LatencyTable.load(path)
    assert table.calibration.legacy and table.prediction_statistic == LatencyStatistic(
        "cpu", "min")
    assert table_profile_settings(table) == settings
    keys = fmnist.runtime_layers(arch)
    assert all(table.entries[k.id].min_ms is not None for k in keys)
    assert got.total_ms == pytest.approx(0.1 + sum(layer_ms(k) for k in keys))
