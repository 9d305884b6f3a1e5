"""The demo's comparison of its pick with the hand-designed references."""

import csv

import pytest

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, shipped_table_path
from mobile_nas.cost.latency.export import export_arch_onnx
from mobile_nas.report.references import (
    GROUND_TRUTH_DIR,
    compare_with_references,
    ground_truth_accuracy,
)
from mobile_nas.space import REFERENCE_ARCHS, get_space


def test_pick_and_references_are_ratios_to_one_reference_timed_with_them(monkeypatch):
    """Every network exported as the tables time them, timed interleaved with the reference
    the ratios are to, in several runs (a fake measurement: the k-th network takes
    1.1 + 0.1 k times the reference, the 2nd run 2% more); ground truth and predictions
    beside."""
    import mobile_nas.cost.latency.measure as measure
    from mobile_nas.cost.latency.measure import AnchoredRun

    calls: list = []

    def fake_anchored(archs, anchor, *, repeats, rounds):
        calls.append((list(archs), anchor, repeats))
        per = [tuple((1.1 + 0.1 * k) * (1.02 if r == 1 else 1.0) for k in range(len(archs)))
               for r in range(repeats)]
        med = tuple(sorted(col)[len(col) // 2] for col in zip(*per, strict=True))
        return AnchoredRun(fractions=med, anchor_ms=0.12, retest_pct=0.7, repeats=repeats,
                           per_repeat=tuple(per), anchor_per_repeat_ms=(0.12,) * repeats)

    monkeypatch.setattr(measure, "measure_archs_anchored", fake_anchored)
    space = get_space("fmnist28")
    pick = space.decode("ds_k3_n1_c16_relu|ds_k3_n1_c24_relu|ds_k3_n1_c40_relu|"
                        "mb3_k3_n1_c64_hswish")  # not in the ground-truth set
    predictor = LatencyPredictor(LatencyTable.load(shipped_table_path("fmnist28")))
    rows = compare_with_references(pick, ratio_to="fmnist28_mnasnet",
                                   predict_ms=predictor.predict_ms, repeats=3)
    by_name = {r.name: r for r in rows}
    assert set(by_name) == {"searched", "fmnist28_mobilenet_v2", "fmnist28_mnasnet"}
    (timed, anchor, repeats), = calls
    ref = space.decode(REFERENCE_ARCHS.get("fmnist28_mnasnet").arch)
    assert timed == [pick, space.decode(REFERENCE_ARCHS.get("fmnist28_mobilenet_v2").arch)]
    assert anchor == export_arch_onnx(ref) and repeats == 3
    assert by_name["searched"].measured_ratio == pytest.approx(1.1)
    assert by_name["searched"].measured_ratios == pytest.approx((1.1, 1.1 * 1.02, 1.1))
    assert by_name["fmnist28_mobilenet_v2"].measured_ms == pytest.approx(1.2 * 0.12)
    assert by_name["fmnist28_mnasnet"].measured_ratio == 1.0
    assert by_name["searched"].ground_truth_val is None
    with open(GROUND_TRUTH_DIR / "fmnist28_standalone.csv") as fh:
        recorded = {(r["arch"], r["seed"]): float(r["val_accuracy"]) for r in csv.DictReader(fh)}
    for name in ("fmnist28_mobilenet_v2", "fmnist28_mnasnet"):
        arch = space.decode(REFERENCE_ARCHS.get(name).arch)
        assert by_name[name].ground_truth_val == recorded[(arch.to_string(), "0")]
        assert by_name[name].predicted_ms == predictor.predict_ms(arch)
        assert by_name[name].predicted_ratio == \
            predictor.predict_ms(arch) / predictor.predict_ms(ref)


def test_a_probe_shift_moves_the_predicted_ratios_but_not_the_reference(monkeypatch):
    """With the reference probed (ratios x0.8), every predicted ratio is 0.8 times the
    table's own and the reference's stays 1.0: the base of the ratios."""
    import mobile_nas.cost.latency.measure as measure
    from mobile_nas.cost.latency.measure import AnchoredRun

    def fake_anchored(archs, anchor, *, repeats, rounds):
        f = tuple(1.0 + 0.1 * k for k in range(len(archs)))
        return AnchoredRun(fractions=f, anchor_ms=0.1, retest_pct=0.0, repeats=repeats,
                           per_repeat=(f,) * repeats, anchor_per_repeat_ms=(0.1,) * repeats)

    monkeypatch.setattr(measure, "measure_archs_anchored", fake_anchored)
    space = get_space("fmnist28")
    pick = space.decode("ds_k3_n1_c16_relu|ds_k3_n1_c24_relu|ds_k3_n1_c40_relu|"
                        "mb3_k3_n1_c64_hswish")
    predict = LatencyPredictor(LatencyTable.load(shipped_table_path("fmnist28"))).predict_ms
    plain = {r.name: r for r in compare_with_references(
        pick, ratio_to="fmnist28_mnasnet", predict_ms=predict, repeats=2)}
    probed = {r.name: r for r in compare_with_references(
        pick, ratio_to="fmnist28_mnasnet", predict_ms=predict, repeats=2, probe_shift=0.8)}
    for name in ("searched", "fmnist28_mobilenet_v2"):
        assert probed[name].predicted_ratio == pytest.approx(0.8 * plain[name].predicted_ratio)
        assert probed[name].predicted_ms == plain[name].predicted_ms
    assert probed["fmnist28_mnasnet"].predicted_ratio == plain["fmnist28_mnasnet"].predicted_ratio \
        == 1.0


def test_a_space_without_ground_truth_has_no_accuracies(tmp_path):
    assert ground_truth_accuracy("fmnist28", tmp_path) == {}
    assert ground_truth_accuracy("nope") == {}
