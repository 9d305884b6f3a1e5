"""The per-op network model and the relative (anchor-fraction) calibration, on exact fakes."""

import json

import numpy as np
import pytest

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, LayerLatency
from mobile_nas.cost.latency.calibrate import (
    AnchoredMeasurement,
    CalibrationPlan,
    calibrate_table,
)
from mobile_nas.cost.latency.check import pair_order
from mobile_nas.cost.latency.network_model import (
    SHAPE_MIN_NETWORKS,
    apply_weights,
    fit_network_model,
    network_features,
    shape_features,
)
from mobile_nas.space.layers import LayerKey
from tests.cost.latency.fakes import distinct_archs

#: What a whole network costs on the fake device: a per-network overhead, per-op scales of
#: the lone layers' times and a per-layer saving (the lone layer's session call).
TRUE = {"const": 0.05, "sum:mb": 0.7, "sum:ds": 1.1, "count:mb": -0.002, "sum": 0.9}


def _true_units(per_layer) -> float:
    return apply_weights(TRUE, network_features(per_layer))


def _table(fmnist, archs, *, anchor_ms: float) -> LatencyTable:
    """Entries with a deterministic time per key; anchor fraction = time / ``anchor_ms``."""
    keys = {k.id: k for a in archs for k in fmnist.runtime_layers(a)}
    entries = {}
    for kid, k in keys.items():
        ms = 0.002 + 1e-9 * k.cin * k.cout * k.h * k.w * k.kernel
        entries[kid] = LayerLatency(median_ms=ms, iqr_ms=0.0, n=1, min_ms=ms,
                                    anchor_fraction=ms / anchor_ms)
    return LatencyTable(space="fmnist28", metadata={"statistic": "median", "clock": "wall"},
                        entries=entries)


@pytest.fixture
def archs(fmnist):
    return distinct_archs(fmnist, 40, seed=3)


def test_features_sum_and_count_per_op():
    mb = LayerKey.from_id("mb:cin16:cout24:h14:w14:k3:s1:e3:se0:relu:r0")
    ds = LayerKey.from_id("ds:cin16:cout16:h28:w28:k3:s2:e1:se0:relu:r0")
    f = network_features([(mb, 0.2), (ds, 0.1), (mb, 0.3)])
    assert f == pytest.approx({"const": 1.0, "sum": 0.6, "count": 3.0, "sum:mb": 0.5,
                               "count:mb": 2.0, "sum:ds": 0.1, "count:ds": 1.0})


def test_fit_recovers_a_model_it_can_express(fmnist, archs):
    table = _table(fmnist, archs, anchor_ms=0.2)
    feats = [network_features([(k, table.entries[k.id].anchor_fraction)
                               for k in fmnist.runtime_layers(a)]) for a in archs]
    y = [apply_weights(TRUE, f) for f in feats]
    fit = fit_network_model(feats[:30], y[:30])
    pred = [apply_weights(fit.weights, f) for f in feats[30:]]
    assert pred == pytest.approx(y[30:], rel=0.02)
    assert fit.loo_mape < 2.0


def test_an_op_no_fitted_network_has_is_predicted_by_the_shared_terms():
    a = LayerKey.from_id("mb:cin16:cout24:h14:w14:k3:s1:e3:se0:relu:r0")
    unseen = LayerKey.from_id("ds:cin16:cout16:h28:w28:k3:s2:e1:se0:relu:r0")
    rng = np.random.default_rng(0)
    feats = [network_features([(a, float(v)) for v in rng.uniform(0.1, 1, n)])
             for n in rng.integers(2, 9, 20)]
    y = [0.1 + f["sum"] for f in feats]
    fit = fit_network_model(feats, y)
    assert not any(name.endswith(":ds") for name in fit.weights)
    pred = apply_weights(fit.weights, network_features([(unseen, 0.5), (a, 0.5)]))
    assert pred == pytest.approx(1.1, rel=0.05)


def test_relative_calibration_predicts_fractions_of_the_anchor(fmnist, archs, tmp_path):
    """Networks measured with the anchor at 0.2 ms, layers timed when it took 0.1 ms (a
    machine twice as slow during calibration): the fit in anchor fractions is unaffected,
    and ms follow whichever anchor time the predictor is given."""
    table = _table(fmnist, archs, anchor_ms=0.1)

    def measure(batch):
        ms = [_true_units([(k, table.entries[k.id].anchor_fraction)
                           for k in fmnist.runtime_layers(a)]) * 0.2 for a in batch]
        return AnchoredMeasurement(measured_ms=tuple(ms), anchor_ms=0.2)

    plan = CalibrationPlan(fit=tuple(archs[:30]), held_out=tuple(archs[30:]), seed=0)
    cal_table = calibrate_table(table, plan, measure=measure)
    cal = cal_table.calibration
    assert cal.relative and cal.anchor_ms == 0.2 and cal.weights is not None
    assert cal.held_out.mape < 2.0
    path = tmp_path / "t.json"
    cal_table.save(path)
    loaded = LatencyTable.load(path)
    assert json.loads(path.read_text())["schema_version"] == 3
    assert loaded.calibration == cal
    here = LatencyPredictor(loaded).predict(archs[35])
    elsewhere = LatencyPredictor(loaded, anchor_ms=0.3).predict(archs[35])
    assert here.anchor_fraction == pytest.approx(elsewhere.anchor_fraction)
    assert here.total_ms == pytest.approx(here.anchor_fraction * 0.2)
    assert elsewhere.total_ms == pytest.approx(here.total_ms * 1.5)


def test_an_entry_without_a_fraction_is_converted_on_the_tables_timebase(fmnist, archs):
    table = _table(fmnist, archs, anchor_ms=0.1)
    kid, e = next(iter(table.entries.items()))
    added = table.with_entries({kid: LayerLatency(median_ms=e.median_ms, iqr_ms=0.0, n=1)})
    assert added.anchor_fraction(kid) == pytest.approx(e.anchor_fraction)


def test_pair_order_counts_close_pairs_above_the_noise_floor():
    measured = [1.00, 1.05, 1.30, 1.011]
    predicted = [1.00, 1.04, 1.20, 0.99]
    po = pair_order(predicted, measured, floor_pct=2.0)
    # close pairs (2% < diff < 10%): (0,1) right, (1,3) right; (0,3) 1.1% is under the floor
    assert (po.pairs, po.correct, po.share) == (2, 2, 1.0)
    po = pair_order([1.06, 1.04, 1.2, 0.99], measured, floor_pct=2.0)
    assert (po.pairs, po.correct) == (2, 1)


def test_too_few_networks_for_the_models_weights_fit_the_linear_form(fmnist, archs):
    """fmnist28's model has 13 weights: 12 fitted networks leave no residual to see by."""
    table = _table(fmnist, archs, anchor_ms=0.1)

    def measure(batch):
        return AnchoredMeasurement(measured_ms=tuple(
            _true_units([(k, table.entries[k.id].anchor_fraction)
                         for k in fmnist.runtime_layers(a)]) * 0.2 for a in batch),
            anchor_ms=0.2)

    few = calibrate_table(table, CalibrationPlan(fit=tuple(archs[:12]),
                                                 held_out=tuple(archs[12:16]), seed=0),
                          measure=measure).calibration
    assert few.weights is None and few.coefficients in (1, 2, 3)
    enough = calibrate_table(table, CalibrationPlan(fit=tuple(archs[:15]),
                                                    held_out=tuple(archs[15:20]), seed=0),
                             measure=measure).calibration
    assert enough.weights is not None and enough.relative


def test_a_schema_2_table_still_loads_and_predicts_with_its_linear_calibration(tmp_path):
    """The shipped nasnet table as of 2026-11-30 (schema 2: ms entries, no anchor, the
    linear calibration), kept as a fixture: it predicts overhead + scale * sum + per_layer * n
    in ms, has no anchor fraction, and saves as schema 3 without inventing one."""
    from pathlib import Path

    from mobile_nas.space import get_space

    path = Path(__file__).parent / "data" / "v2_table_nasnet.json"
    table = LatencyTable.load(path)
    cal = table.calibration
    assert cal.weights is None and not cal.relative and cal.coefficients == 3
    assert table.anchor_timebase_ms is None
    space = get_space("nasnet")
    arch = space.sample(0)
    pred = LatencyPredictor(table).predict(arch)
    assert pred.anchor_fraction is None
    assert pred.total_ms == pytest.approx(cal.overhead_ms + cal.scale * pred.sum_ms
                                          + cal.per_layer_ms * len(pred.per_layer))
    out = tmp_path / "t.json"
    table.save(out)
    saved = json.loads(out.read_text())
    assert saved["schema_version"] == 3
    assert not any("anchor_fraction" in e for e in saved["entries"].values())
    assert LatencyTable.load(out).calibration == cal


def test_shape_features_add_activation_se_and_shape_terms():
    mb = LayerKey.from_id("mb:cin16:cout24:h14:w14:k3:s1:e3:se0.25:hswish:r1")
    f = shape_features([(mb, 0.2)])
    assert f["sum:mb"] == f["sum:mb_hswish"] == f["sum:mb_seTrue"] == f["sum:c24"] == 0.2
    assert f["count:k3"] == f["count:e3"] == f["count:s1_r1"] == f["count:h14"] == 1.0
    assert network_features([(mb, 0.2)]).items() <= f.items()


def test_a_large_calibration_fits_the_shape_model_and_stores_it(fmnist, tmp_path):
    """A device where hard-swish layers cost 1.6x their lone time in a network and ReLU
    layers 0.8x: the ops model cannot express it (one weight per op), the shape model
    (fitted from SHAPE_MIN_NETWORKS on) can; the table records which it used."""
    rng = np.random.default_rng(5)
    archs: dict[str, object] = {}
    while len(archs) < SHAPE_MIN_NETWORKS + 30:
        a = fmnist.sample(rng)
        archs.setdefault(a.to_string(), a)
    nets = list(archs.values())
    table = _table(fmnist, nets, anchor_ms=0.2)

    def units(a) -> float:
        return 0.05 + sum(table.entries[k.id].anchor_fraction * (1.6 if k.act == "hswish"
                                                                  else 0.8)
                          for k in fmnist.runtime_layers(a))

    def measure(batch):
        return AnchoredMeasurement(measured_ms=tuple(units(a) * 0.2 for a in batch),
                                   anchor_ms=0.2)

    def held_out_mape(n_fit: int) -> tuple[str, float]:
        plan = CalibrationPlan(fit=tuple(nets[:n_fit]), held_out=tuple(nets[-30:]), seed=0)
        cal = calibrate_table(table, plan, measure=measure).calibration
        return cal.features, cal.held_out.mape

    features, ops_mape = held_out_mape(SHAPE_MIN_NETWORKS - 30)
    assert features == "ops" and ops_mape > 5.0
    features, mape = held_out_mape(SHAPE_MIN_NETWORKS)
    assert features == "shape" and mape < 2.0
    plan = CalibrationPlan(fit=tuple(nets[:SHAPE_MIN_NETWORKS]), held_out=tuple(nets[-30:]),
                           seed=0)
    cal_table = calibrate_table(table, plan, measure=measure)
    path = tmp_path / "t.json"
    cal_table.save(path)
    loaded = LatencyTable.load(path)
    assert loaded.calibration.features == "shape"
    assert LatencyPredictor(loaded).predict(nets[-1]).anchor_fraction == pytest.approx(
        units(nets[-1]), rel=0.02)


def test_a_fitted_network_is_predicted_by_its_measurement(fmnist, archs, tmp_path):
    """The first fitted network measures 30% above what the model can express (as a
    reference the random networks do not resemble): it is predicted at its measurement, so a
    ratio to it carries no model error of its own; other networks follow the model; a table
    whose calibration does not say so (the default) predicts it by the model."""
    table = _table(fmnist, archs, anchor_ms=0.1)

    def units(a) -> float:
        return _true_units([(k, table.entries[k.id].anchor_fraction)
                            for k in fmnist.runtime_layers(a)])

    def measure(batch):
        return AnchoredMeasurement(measured_ms=tuple(
            units(a) * 0.2 * (1.3 if a is archs[0] else 1.0) for a in batch), anchor_ms=0.2)

    plan = CalibrationPlan(fit=tuple(archs[:30]), held_out=tuple(archs[30:]), seed=0)
    cal_table = calibrate_table(table, plan, measure=measure, measured_lookup=True)
    path = tmp_path / "t.json"
    cal_table.save(path)
    predictor = LatencyPredictor(LatencyTable.load(path))
    ref = predictor.predict(archs[0])
    assert ref.measured and ref.anchor_fraction == pytest.approx(units(archs[0]) * 1.3)
    other = predictor.predict(archs[35])
    assert not other.measured
    assert other.anchor_fraction == pytest.approx(units(archs[35]), rel=0.1)
    default = calibrate_table(table, plan, measure=measure)
    assert not default.calibration.measured_lookup
    old = LatencyPredictor(default).predict(archs[0])
    assert not old.measured and old.anchor_fraction < units(archs[0]) * 1.2
