"""The demo's comparison of its pick with the hand-designed references."""

import csv

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, shipped_table_path
from mobile_nas.export.onnx_export import export_onnx_bytes
from mobile_nas.models import build_model
from mobile_nas.report.references import (
    GROUND_TRUTH_DIR,
    compare_with_references,
    ground_truth_accuracy,
)
from mobile_nas.space import REFERENCE_ARCHS, get_space


def test_pick_and_references_are_timed_together_with_their_ground_truth(tmp_path,
                                                                        monkeypatch):
    import mobile_nas.export.deploy as deploy

    timed: list[dict] = []

    def fake_time_models(paths, *, runs, threads):  # one call, every network in it
        timed.append(dict(paths))
        return {"threads": threads, **{name: {"p50_ms": 0.1 + 0.01 * i, "runs": runs}
                                       for i, name in enumerate(paths)}}

    monkeypatch.setattr(deploy, "time_models", fake_time_models)
    space = get_space("fmnist28")
    pick = space.decode("ds_k3_n1_c16_relu|ds_k3_n1_c24_relu|ds_k3_n1_c40_relu|"
                        "mb3_k3_n1_c64_hswish")  # not in the ground-truth set
    onnx_path = tmp_path / "pick.onnx"
    onnx_path.write_bytes(export_onnx_bytes(build_model(pick).eval(), space.input_shape))
    predictor = LatencyPredictor(LatencyTable.load(shipped_table_path("fmnist28")))
    rows = compare_with_references(pick, onnx_path, predict_ms=predictor.predict_ms, runs=20)
    by_name = {r.name: r for r in rows}
    assert set(by_name) == {"searched", "fmnist28_mobilenet_v2", "fmnist28_mnasnet"}
    assert by_name["searched"].ground_truth_val is None
    with open(GROUND_TRUTH_DIR / "fmnist28_standalone.csv") as fh:
        recorded = {(r["arch"], r["seed"]): float(r["val_accuracy"]) for r in csv.DictReader(fh)}
    for name in ("fmnist28_mobilenet_v2", "fmnist28_mnasnet"):
        arch = REFERENCE_ARCHS.get(name).arch
        assert by_name[name].ground_truth_val == recorded[(arch, "0")]
        assert by_name[name].predicted_ms == predictor.predict_ms(space.decode(arch))
    assert len(timed) == 1 and list(timed[0]) == [r.name for r in rows]
    assert timed[0]["searched"] == str(onnx_path)
    assert [r.measured_ms for r in rows] == [0.1 + 0.01 * i for i in range(len(rows))]


def test_a_space_without_ground_truth_has_no_accuracies(tmp_path):
    assert ground_truth_accuracy("fmnist28", tmp_path) == {}
    assert ground_truth_accuracy("nope") == {}
