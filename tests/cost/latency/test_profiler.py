import pytest

from mobile_nas.cost.latency import LatencyTable, LatencyTableError
from mobile_nas.cost.latency.calibrate import fit_calibration
from mobile_nas.cost.latency.profiler import ProfileSettings, build_table

from .conftest import SMALL_ARCH


def test_table_covers_arch_with_metadata(small_table_path, fmnist, small_arch):
    table = LatencyTable.load(small_table_path)
    assert not table.missing(fmnist.layers(small_arch))
    md = table.metadata
    for field in ("device", "cpu", "os", "onnxruntime", "provider", "threads", "opset",
                  "date", "mobile_nas_version", "clock", "build_seconds"):
        assert field in md, field
    assert md["threads"] == 1 and md["opset"] == 17
    assert md["restricted_to_archs"] == [SMALL_ARCH]
    for stats in table.entries.values():
        assert stats.median_ms > 0 and stats.n == 4 * 3


def test_resume_keeps_entries_and_adds_missing(tmp_path, fmnist, small_arch,
                                               small_table_path):
    keys = sorted(set(fmnist.layers(small_arch)))
    out = tmp_path / "partial.json"
    full = LatencyTable.load(small_table_path)
    # a "killed" build: only the first two keys made it to disk
    LatencyTable(space="fmnist28", metadata=dict(full.metadata),
                 entries={k.id: full.entries[k.id] for k in keys[:2]}).save(out)
    timed = []
    resumed = build_table("fmnist28", keys, out, resume=True, progress=False,
                          settings=ProfileSettings(rounds=4, runs_per_round=3, clock="cpu",
                                                   chunk=3),
                          on_chunk=lambda t: timed.append(len(t)))
    assert len(resumed) == len(keys)
    assert timed[0] == 5  # the first chunk added 3 keys to the 2 kept ones
    for k in keys[:2]:  # kept, not re-timed
        assert resumed.entries[k.id] == full.entries[k.id]
    assert LatencyTable.load(out) == resumed


def test_resume_refuses_other_settings(tmp_path, fmnist, small_arch, small_table_path):
    out = tmp_path / "t.json"
    out.write_bytes(small_table_path.read_bytes())
    with pytest.raises(LatencyTableError, match="cannot resume"):
        build_table("fmnist28", fmnist.layers(small_arch), out, resume=True, progress=False,
                    settings=ProfileSettings(clock="wall"))


def test_calibration_fit_recovers_coefficients():
    sums = [1.0, 2.0, 3.0, 5.0, 8.0]
    layers = [10, 12, 9, 15, 20]
    measured = [0.2 + 0.9 * s - 0.01 * n for s, n in zip(sums, layers, strict=True)]
    cal = fit_calibration(sums, layers, measured)
    assert cal.overhead_ms == pytest.approx(0.2)
    assert cal.scale == pytest.approx(0.9)
    assert cal.per_layer_ms == pytest.approx(-0.01)
    assert cal.fit_mape == pytest.approx(0.0, abs=1e-6)


def test_calibration_fit_has_no_large_negative_overhead():
    # layer sums far above the whole networks and noise: an affine fit gives an overhead of
    # about -0.7 ms, predicting < 0 ms for networks a little smaller than those measured
    sums, layers, measured = [4.0, 5.0, 9.0], [90, 90, 90], [0.17, 0.31, 0.51]
    cal = fit_calibration(sums, layers, measured)
    assert cal.overhead_ms >= -0.25 * 0.17 and cal.scale > 0
    assert cal.apply(0.5, 10) > 0
    # a small negative overhead of a good fit stays (shipped tables have some)
    sums, layers = [1.0, 2.0, 3.0, 5.0, 8.0], [10, 12, 9, 15, 20]
    measured = [-0.05 + 1.1 * s - 0.01 * n for s, n in zip(sums, layers, strict=True)]
    assert fit_calibration(sums, layers, measured).overhead_ms == pytest.approx(-0.05)
