"""A table with passes (``lut merge``): several builds merged (median), on exact fakes."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, LayerLatency
from mobile_nas.cost.latency.calibrate import (
    AnchoredMeasurement,
    CalibrationPlan,
    calibrate_table,
)
from mobile_nas.cost.latency.errors import LatencyTableError
from mobile_nas.cost.latency.network_model import apply_weights, network_features
from tests.cost.latency.fakes import distinct_archs

TRUE = {"const": 0.05, "sum:mb": 0.7, "sum:ds": 1.1, "count:mb": -0.002, "sum": 0.9}


def _build(fmnist, archs, *, entry_scale: float, measured_scale: float, **metadata
           ) -> LatencyTable:
    """A calibrated relative build: entries ``entry_scale`` x a fixed time per key, its
    networks measured at ``measured_scale`` x what the fake device takes."""
    keys = {k.id: k for a in archs for k in fmnist.runtime_layers(a)}
    entries = {}
    for kid, k in keys.items():
        ms = (0.002 + 1e-9 * k.cin * k.cout * k.h * k.w * k.kernel)
        entries[kid] = LayerLatency(median_ms=ms * entry_scale, iqr_ms=0.0, n=1,
                                    anchor_fraction=ms * entry_scale / 0.1)
    table = LatencyTable(space="fmnist28", metadata={"statistic": "median", "clock": "wall",
                                                     **metadata}, entries=entries)

    def measure(batch):
        truth = [apply_weights(TRUE, network_features(
            [(k, 10 * (0.002 + 1e-9 * k.cin * k.cout * k.h * k.w * k.kernel))
             for k in fmnist.runtime_layers(a)])) for a in batch]
        return AnchoredMeasurement(measured_ms=tuple(t * 0.2 * measured_scale for t in truth),
                                   anchor_ms=0.2)

    plan = CalibrationPlan(fit=tuple(archs[:30]), held_out=tuple(archs[30:]), seed=0)
    return calibrate_table(table, plan, measure=measure)


@pytest.fixture
def archs(fmnist):
    return distinct_archs(fmnist, 40, seed=5)


@pytest.fixture
def builds(fmnist, archs):
    """Three builds of one device: one measured 20% slow, one with entries 10% high."""
    return [_build(fmnist, archs, entry_scale=1.0, measured_scale=1.0),
            _build(fmnist, archs, entry_scale=1.0, measured_scale=1.2),
            _build(fmnist, archs, entry_scale=1.1, measured_scale=1.0)]


def test_a_merged_table_predicts_the_median_of_its_builds_fractions(builds, archs, tmp_path):
    merged = builds[0].with_passes(builds[1:])
    path = tmp_path / "merged.json"
    merged.save(path)
    loaded = LatencyTable.load(path)
    assert len(loaded.passes) == 2
    alone = [LatencyPredictor(b).predict(archs[35]).anchor_fraction for b in builds]
    got = LatencyPredictor(loaded).predict(archs[35])
    assert got.passes == 3
    # the median: the build measured 20% slow does not move the prediction
    assert got.anchor_fraction == pytest.approx(np.median(alone))
    assert got.anchor_fraction == pytest.approx(alone[0], rel=0.02)
    assert alone[1] == pytest.approx(1.2 * alone[0], rel=0.02)
    two = LatencyPredictor(builds[0].with_passes([builds[1]])).predict(archs[35])
    assert two.anchor_fraction == pytest.approx(alone[0] * 1.1, rel=0.02)  # of two: the mean
    # ms through the predictor's anchor: the first build's, or one re-timed here
    assert got.total_ms == pytest.approx(got.anchor_fraction * 0.2)
    assert LatencyPredictor(loaded, anchor_ms=0.4).predict(archs[35]).total_ms == \
        pytest.approx(2 * got.total_ms)


def test_merging_a_merged_table_flattens_its_passes(builds):
    twice = builds[0].with_passes([builds[1].with_passes([builds[2]])])
    assert len(twice.passes) == 2 and not any(p.passes for p in twice.passes)


def test_builds_of_another_device_or_protocol_are_refused(fmnist, archs, builds):
    other = _build(fmnist, archs, entry_scale=1.0, measured_scale=1.0, cpu="AMD EPYC")
    with pytest.raises(LatencyTableError, match="pass 2 has cpu 'AMD EPYC'"):
        builds[0].with_passes([other])
    threads = builds[1].with_metadata(threads=4)
    with pytest.raises(LatencyTableError, match="threads"):
        builds[0].with_passes([threads])


def test_builds_of_other_layers_or_without_a_relative_calibration_are_refused(builds):
    fewer = dataclasses.replace(builds[1], entries=dict(list(builds[1].entries.items())[1:]))
    with pytest.raises(LatencyTableError, match="differs from the first table in 1 layer"):
        builds[0].with_passes([fewer])
    with pytest.raises(LatencyTableError, match="pass 2 has no relative network-model"):
        builds[0].with_passes([builds[1].with_calibration(None)])


def test_entries_added_later_reach_every_pass(builds):
    merged = builds[0].with_passes(builds[1:])
    key = next(iter(merged.entries))
    new = LayerLatency(median_ms=1.0, iqr_ms=0.0, n=1, anchor_fraction=10.0)
    added = merged.with_entries({key: new})
    assert all(t.entries[key] == new for t in (added, *added.passes))


def test_lut_merge_writes_the_merged_table_and_refuses_bad_input(builds, tmp_path):
    paths = []
    for i, b in enumerate(builds):
        paths.append(tmp_path / f"p{i}.json")
        b.save(paths[-1])
    out = tmp_path / "merged.json"
    ok = subprocess.run([sys.executable, "-m", "mobile_nas", "lut", "merge", *map(str, paths),
                         "--out", str(out)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "3 builds of fmnist28 merged" in ok.stdout
    assert len(LatencyTable.load(out).passes) == 2
    builds[1].with_metadata(cpu="AMD EPYC").save(paths[1])
    bad = subprocess.run([sys.executable, "-m", "mobile_nas", "lut", "merge", *map(str, paths),
                          "--out", str(tmp_path / "x.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "cpu" in bad.stderr and not (tmp_path / "x.json").exists()


def test_build_passes_builds_each_pass_with_its_own_seed_and_merges(builds, tmp_path):
    from mobile_nas.cost.latency.build import LutBuildResult, build_passes, pass_path
    from mobile_nas.space import get_space

    calls = []

    def fake_build(space, out, *, seed, resume, **options):
        calls.append((out, seed, resume, options))
        table = builds[seed - 7]
        table.save(out)
        return LutBuildResult(table=table, path=out, calibrated=True)

    out = tmp_path / "t.json"
    result = build_passes(get_space("fmnist28"), out, passes=3, seed=7, resume=True,
                          build=fake_build, n_fit=30)
    assert [(c[0], c[1]) for c in calls] == [(pass_path(out, i), 7 + i) for i in range(3)]
    assert all(c[2] and c[3] == {"n_fit": 30} for c in calls)
    assert pass_path(out, 1).name == "t.pass1.json"
    assert len(LatencyTable.load(out).passes) == 2 and len(result.table.passes) == 2
    with pytest.raises(LatencyTableError, match="passes must be >= 1"):
        build_passes(get_space("fmnist28"), out, passes=0, build=fake_build)


def test_whole_space_builds_with_the_default_calibration_make_three_passes(fmnist):
    from mobile_nas.cost.latency.build import DEFAULT_PASSES, default_passes
    from mobile_nas.cost.latency.calibrate import default_fit_networks

    assert DEFAULT_PASSES == 3
    assert default_passes(restricted=False, n_fit=default_fit_networks(fmnist)) == 3
    assert default_passes(restricted=True, n_fit=default_fit_networks(fmnist)) == 1
    assert default_passes(restricted=False, n_fit=3) == 1


def test_passes_without_a_calibration_are_refused_before_any_timing(fmnist, tmp_path):
    from mobile_nas.cost.latency.build import build_passes

    def never(*a, **k):
        raise AssertionError("built")

    with pytest.raises(LatencyTableError, match="needs a calibration"):
        build_passes(fmnist, tmp_path / "t.json", passes=2, n_fit=0, build=never)


def test_the_passes_of_a_restricted_build_share_its_seed(builds, tmp_path):
    """Its random calibration networks add layers: other seeds would cover other layers."""
    from mobile_nas.cost.latency.build import LutBuildResult, build_passes
    from mobile_nas.space import get_space

    seeds = []

    def fake_build(space, out, *, seed, resume, **options):
        seeds.append(seed)
        builds[len(seeds) - 1].save(out)
        return LutBuildResult(table=builds[len(seeds) - 1], path=out, calibrated=True)

    build_passes(get_space("fmnist28"), tmp_path / "t.json", passes=3, seed=4,
                 archs=["fmnist28_mnasnet"], build=fake_build)
    assert seeds == [4, 4, 4]
