"""Ground-truth sets: atomic appends, resuming, and refusal of bad files."""

import json

import pytest

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, shipped_table_path
from mobile_nas.space import get_space
from mobile_nas.train.groundtruth import (
    GroundTruthError,
    GroundTruthRow,
    Recipe,
    append_row,
    done_runs,
    load_ground_truth,
    make_header,
    paths_of,
    stratified_archs,
    write_header,
)

SPACE = get_space("fmnist28")
ARCHS = ["ds_k3_n1_c16_relu|ds_k3_n1_c24_relu|ds_k3_n1_c40_relu|ds_k3_n1_c64_relu",
         "mb3_k5_n1_c24_relu|mb6_k3_n2_c32_hswish|ds_k3_n1_c48_relu|mb3_k3_n2_c80_relu_se"]


def _row(arch: str, seed: int = 0, acc: float = 0.85, recipe: Recipe | None = None):
    recipe = recipe or Recipe()
    return GroundTruthRow(arch=arch, role="bin0", seed=seed, recipe_id=recipe.recipe_id,
                          val_accuracy=acc, test_accuracy=acc - 0.01, train_loss=1.0,
                          macs=1000, params=100, predicted_ms=0.2, train_seconds=10.0,
                          load_average=1.5, finished_at="2026-11-30T00:00:00+00:00")


@pytest.fixture
def stem(tmp_path):
    stem = tmp_path / "gt"
    write_header(stem, make_header(SPACE, Recipe(), command="test"))
    assert append_row(stem, _row(ARCHS[0], 0, 0.82))
    assert append_row(stem, _row(ARCHS[1], 0, 0.87))
    assert append_row(stem, _row(ARCHS[1], 1, 0.86))
    return stem


def test_round_trip_and_resume(stem):
    gt = load_ground_truth(stem, SPACE, recipe=Recipe())
    assert [r.arch for r in gt.rows] == [ARCHS[0], ARCHS[1], ARCHS[1]]
    assert gt.rows[1].val_accuracy == 0.87 and gt.rows[1].macs == 1000
    assert gt.mean_val_accuracy()[ARCHS[1]] == pytest.approx(0.865)
    assert [(a.seed, b.seed) for a, b in gt.seed_pairs()] == [(0, 1)]
    assert done_runs(stem) == {(ARCHS[0], 0), (ARCHS[1], 0), (ARCHS[1], 1)}
    # a rerun never adds a finished run twice
    assert not append_row(stem, _row(ARCHS[0], 0, 0.99))
    assert load_ground_truth(stem).rows[0].val_accuracy == 0.82


def test_truncated_file_is_refused(stem):
    _, csv_path = paths_of(stem)
    text = csv_path.read_text()
    csv_path.write_text(text[:-20])  # cut inside the last row
    with pytest.raises(GroundTruthError, match="truncated"):
        load_ground_truth(stem, SPACE)
    csv_path.write_text(text.rsplit(",", 3)[0] + "\n")  # last row loses its last fields
    with pytest.raises(GroundTruthError, match="fields"):
        load_ground_truth(stem, SPACE)


def test_other_space_and_other_recipe_are_refused(stem):
    with pytest.raises(GroundTruthError, match="space 'fmnist28', not 'mobile224'"):
        load_ground_truth(stem, get_space("mobile224"))
    with pytest.raises(GroundTruthError, match="another recipe .*epochs"):
        load_ground_truth(stem, SPACE, recipe=Recipe(epochs=3))
    # a resumed build with another recipe is refused before it writes anything
    with pytest.raises(GroundTruthError, match="never mixes recipes"):
        write_header(stem, make_header(SPACE, Recipe(epochs=3)))


def test_edited_files_are_refused(stem):
    header_path, csv_path = paths_of(stem)
    header = json.loads(header_path.read_text())
    header["recipe"]["lr"] = 0.5  # recipe changed by hand, id kept
    header_path.write_text(json.dumps(header))
    with pytest.raises(GroundTruthError, match="edited"):
        load_ground_truth(stem, SPACE)
    header["recipe"]["lr"] = 0.1
    header_path.write_text(json.dumps(header))
    append_row(stem, _row(ARCHS[0], 2, recipe=Recipe(epochs=2)))  # a row of another recipe
    with pytest.raises(GroundTruthError, match="line 5: recipe_id"):
        load_ground_truth(stem, SPACE)


def test_bad_values_are_refused(stem):
    _, csv_path = paths_of(stem)
    good = csv_path.read_text()
    csv_path.write_text(good.replace("0.87,", "1.87,", 1))
    with pytest.raises(GroundTruthError, match=r"val_accuracy 1.87 is not in \[0, 1\]"):
        load_ground_truth(stem, SPACE)
    csv_path.write_text(good.replace(",1000,", ",many,", 1))
    with pytest.raises(GroundTruthError, match="macs 'many' is not a number"):
        load_ground_truth(stem, SPACE)
    csv_path.write_text(good.replace("ds_k3_n1_c64_relu", "ds_k4_n1_c64_relu", 1))
    with pytest.raises(GroundTruthError, match="k4"):
        load_ground_truth(stem, SPACE)
    with pytest.raises(GroundTruthError, match="does not exist"):
        load_ground_truth(stem.with_name("missing"), SPACE)


def test_stratified_archs_cover_the_cost_range():
    predictor = LatencyPredictor(LatencyTable.load(shipped_table_path("fmnist28")))
    drawn = stratified_archs(SPACE, predictor.predict_ms, bins=4, per_bin=2, seed=0,
                             pool_size=200)
    assert [b for b, _ in drawn] == [0, 1, 2, 3, 0, 1, 2, 3]  # round-robin order
    assert len({a for _, a in drawn}) == 8
    lat = {b: [predictor.predict_ms(a) for bb, a in drawn if bb == b] for b in range(4)}
    assert max(lat[0]) <= min(lat[3])  # bins follow the cost
    again = stratified_archs(SPACE, predictor.predict_ms, bins=4, per_bin=2, seed=0,
                             pool_size=200)
    assert again == drawn  # the selection is fixed by its seed


def test_another_selection_of_the_same_set_is_recorded_once(tmp_path):
    stem = tmp_path / "gt"
    first = {"bins": 8, "per_bin": 6, "seed": 0}
    write_header(stem, make_header(SPACE, Recipe(), selection=first, command="a"))
    second = {**first, "seed": 1}
    for _ in range(2):  # a resumed second draw does not add it again
        write_header(stem, make_header(SPACE, Recipe(), selection=second, command="b",
                                       created="t"))
    write_header(stem, make_header(SPACE, Recipe(), selection=first, command="c"))
    header = json.loads(paths_of(stem)[0].read_text())
    assert header["selection"] == first and header["command"] == "a"
    assert header["more_selections"] == [{"selection": second, "command": "b", "created": "t"}]


def test_repredict_replaces_predicted_ms_only_and_records_the_table(stem):
    from mobile_nas.train.groundtruth import repredict

    before = load_ground_truth(stem).rows
    n = repredict(stem, lambda arch: 0.1 if arch == ARCHS[0] else 0.3,
                  table={"table": "latency_tables/fmnist28.json", "sha256": "ab"})
    gt = load_ground_truth(stem, SPACE, recipe=Recipe())
    assert n == 3 and [r.predicted_ms for r in gt.rows] == [0.1, 0.3, 0.3]
    assert [r.val_accuracy for r in gt.rows] == [r.val_accuracy for r in before]
    assert gt.header["predicted_ms_from"]["sha256"] == "ab"
