import math

import pytest

from mobile_nas.cost.latency import (
    Calibration,
    HeldOutCheck,
    LatencyPrediction,
    LatencyPredictor,
    LatencyTable,
    LayerLatency,
    MissingEntryError,
)
from mobile_nas.errors import MobileNasError


def _synthetic_table(space, arch, drop: int = 0) -> LatencyTable:
    keys = sorted(set(space.layers(arch)))
    entries = {k.id: LayerLatency(median_ms=0.01 * (i + 1), iqr_ms=0.0, n=1)
               for i, k in enumerate(keys[drop:])}
    return LatencyTable(space=space.name, entries=entries)


def test_predict_sums_layers_in_order(fmnist, small_arch):
    table = _synthetic_table(fmnist, small_arch)
    pred = LatencyPredictor(table).predict(small_arch)
    assert isinstance(pred, LatencyPrediction)
    assert [k for k, _ in pred.per_layer] == fmnist.layers(small_arch)
    expected = sum(table.entries[k.id].median_ms for k in fmnist.layers(small_arch))
    assert math.isclose(pred.total_ms, expected) and not pred.calibrated


def test_calibration_is_applied(fmnist, small_arch):
    check = HeldOutCheck(archs=("a",), measured_ms=(1.0,), predicted_ms=(1.0,))
    cal = Calibration(overhead_ms=0.5, scale=2.0, per_layer_ms=-0.01, held_out=check)
    table = _synthetic_table(fmnist, small_arch).with_calibration(cal)
    pred = LatencyPredictor(table).predict(small_arch)
    assert math.isclose(pred.total_ms, 0.5 + 2.0 * pred.sum_ms - 0.01 * len(pred.per_layer))
    assert pred.calibrated and pred.statistic == "wall-clock median"


def test_missing_keys_name_keys_and_command(fmnist, small_arch):
    table = _synthetic_table(fmnist, small_arch, drop=2)
    with pytest.raises(MissingEntryError) as info:
        LatencyPredictor(table).predict(small_arch)
    err = info.value
    assert isinstance(err, MobileNasError)
    assert len(err.missing) == 2 and err.missing[0] in str(err)
    assert "mobile-nas lut build --space fmnist28 --arch" in str(err)
    assert small_arch.to_string() in str(err)


def test_wrong_space(fmnist, small_arch):
    table = LatencyTable(space="mobile224")
    with pytest.raises(MobileNasError, match="mobile224"):
        LatencyPredictor(table).predict(small_arch)


def test_min_statistic_predicts_with_fastest_runs(fmnist, small_arch):
    keys = sorted(set(fmnist.layers(small_arch)))
    entries = {k.id: LayerLatency(median_ms=0.2, iqr_ms=0.01, n=30, min_ms=0.1) for k in keys}
    median = LatencyTable(space="fmnist28", entries=entries)
    fastest = LatencyTable(space="fmnist28", entries=entries, metadata={"statistic": "min"})
    n = len(fmnist.layers(small_arch))
    assert math.isclose(LatencyPredictor(median).predict(small_arch).total_ms, 0.2 * n)
    assert math.isclose(LatencyPredictor(fastest).predict(small_arch).total_ms, 0.1 * n)
