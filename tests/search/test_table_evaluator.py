"""Tabular benchmarks from CSV: layouts, percent handling, errors, the search CLI, and the
real NAS-Bench-201 tables when ../shared/data/nb201 is present."""

import csv
import json
import statistics
from pathlib import Path

import pytest

from mobile_nas.errors import SettingError
from mobile_nas.search.table_evaluator import (
    TableFileError,
    TabularBenchmark,
    read_value_csv,
)
from mobile_nas.space import get_space

NB201_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nb201"
needs_nb201 = pytest.mark.skipif(
    not (NB201_DATA / "accuracy.csv").is_file(),
    reason=f"NAS-Bench-201 data folder {NB201_DATA} is absent (CI provides it)")

A = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
     "nor_conv_1x1~2|")
B = ("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
     "skip_connect~2|")
C = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _write(path: Path, rows: list[list]) -> Path:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


@pytest.fixture
def tables(tmp_path):
    acc = _write(tmp_path / "acc.csv", [["arch", "value"], [A, 0.94], [B, 0.86], [C, 0.10]])
    lat = _write(tmp_path / "lat.csv", [["arch", "value"], [A, 20.0], [B, 4.0], [C, 1.0]])
    return acc, lat


def test_arch_value_layout(tables):
    space = get_space("nb201")
    bench = TabularBenchmark.from_csv(space=space, accuracy_csv=tables[0],
                                      latency_csv=tables[1])
    ev = bench.evaluator()
    assert ev.evaluate(space.decode(A)) == 0.94
    assert bench.latency_ms(space.decode(B)) == 4.0
    assert bench.constrained_optimum(5.0) == (B, 0.86)
    assert bench.constrained_optimum(25.0) == (A, 0.94)
    assert ev.describe()["entries"] == 3


def test_nb201_layouts_with_index_and_percent(tmp_path):
    space = get_space("nb201")
    acc = _write(tmp_path / "accuracy.csv", [["index", "arch", "cifar10_test", "cifar100_test"],
                                             [0, B, 85.5, 52.0], [1, A, 94.0, 73.0]])
    lat = _write(tmp_path / "latency_dev.csv", [["index", "latency_ms"], [1, 17.2], [0, 3.6]])
    bench = TabularBenchmark.from_csv(space=space, accuracy_csv=acc, latency_csv=lat)
    assert bench.accuracy == {B: pytest.approx(0.855), A: pytest.approx(0.94)}
    assert bench.latency == {B: 3.6, A: 17.2}
    other = TabularBenchmark.from_csv(space=space, accuracy_csv=acc, latency_csv=lat,
                                      accuracy_column="cifar100_test")
    assert other.accuracy[A] == pytest.approx(0.73)


def test_index_only_csv_uses_archs_txt_beside_it(tmp_path):
    (tmp_path / "archs.txt").write_text(f"{B}\n{A}\n")
    lat = _write(tmp_path / "lat.csv", [["index", "latency_ms"], [0, 3.0], [1, 9.0]])
    col = read_value_csv(lat, get_space("nb201"))
    assert col.values == {B: 3.0, A: 9.0} and col.column == "latency_ms"


@pytest.mark.parametrize("rows, needle", [
    ([["arch", "value"]], "no data rows"),
    ([["name", "value"], ["x", 1]], "'arch' or an 'index' column"),
    ([["arch", "value"], ["|bad~0|", 1]], "row 2"),
    ([["arch", "value"], [A, "fast"]], "'fast' is not a number"),
    ([["arch", "value"], [A, "nan"]], "not finite"),
    ([["arch", "value"], [A, 1], [A, 2]], "appears twice"),
    ([["arch", "value"], [A]], "1 fields, header has 2"),
    ([["index", "latency_ms"], [0, 1.0]], "no index→arch map"),
])
def test_bad_files_name_the_problem(tmp_path, rows, needle):
    path = _write(tmp_path / "t.csv", rows)
    with pytest.raises(TableFileError, match=needle):
        read_value_csv(path, get_space("nb201"))


def test_latency_must_cover_every_accuracy_row(tmp_path, tables):
    lat = _write(tmp_path / "l2.csv", [["arch", "value"], [A, 20.0]])
    with pytest.raises(TableFileError, match="no latency"):
        TabularBenchmark.from_csv(space=get_space("nb201"), accuracy_csv=tables[0],
                                  latency_csv=lat)


def _synthetic_full_tables(tmp_path):
    """Every NB201 cell with a made-up accuracy and latency (convs help and cost)."""
    import itertools

    space = get_space("nb201")
    acc, lat = {}, {}
    for ix in itertools.product(range(5), repeat=6):
        arch = space.from_indices(ix).to_string()
        acc[arch] = 0.5 + 0.06 * ix.count(3) + 0.03 * ix.count(2) + 0.001 * ix[0]
        lat[arch] = 1.0 + 3 * ix.count(3) + ix.count(2) + 0.5 * ix.count(4)
    _write(tmp_path / "acc.csv", [["arch", "value"], *acc.items()])
    _write(tmp_path / "lat.csv", [["arch", "value"], *lat.items()])
    return tmp_path / "acc.csv", tmp_path / "lat.csv", acc, lat


def test_search_cli_with_table_evaluator(run_cli, tmp_path):
    acc_csv, lat_csv, acc, lat = _synthetic_full_tables(tmp_path)
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        "search", "--space", "nb201", "--strategy", "evolution", "--evaluator", "table",
        "--accuracy-csv", str(acc_csv), "--latency-csv", str(lat_csv),
        "--latency-target-ms", "5", "--reward", "hard", "--trials", "10", "--out", str(out),
        "--storage", "memory", "--no-progress", "--json")
    assert code == 0, err
    best = json.loads((out / "best.json").read_text())
    assert best["feasible"] and best["latency_ms"] <= 5
    assert best["accuracy"] == pytest.approx(acc[best["arch"]])
    assert best["latency_ms"] == lat[best["arch"]]
    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 10 == json.loads(stdout)["trials"]
    assert all(float(r["accuracy"]) == pytest.approx(acc[r["arch"]]) for r in rows)
    assert best["accuracy"] == max(float(r["accuracy"]) for r in rows
                                   if float(r["latency_ms"]) <= 5)


def test_partial_table_fails_with_the_missing_arch(run_cli, tables, tmp_path):
    code, _, err = run_cli(
        "search", "--space", "nb201", "--strategy", "random", "--evaluator", "table",
        "--accuracy-csv", str(tables[0]), "--latency-csv", str(tables[1]),
        "--latency-target-ms", "5", "--trials", "3", "--out", str(tmp_path / "r"),
        "--no-progress", "--seed", "0")
    assert code == 2 and "is not in the latency table" in err


@pytest.mark.parametrize("extra, needle", [
    (["--evaluator", "table"], "needs --accuracy-csv"),
    (["--accuracy-csv", "a.csv"], "need --evaluator table"),
    (["--evaluator", "table", "--accuracy-csv", "ACC", "--latency-csv", "LAT", "--measure"],
     "one latency source"),
    (["--evaluator", "table", "--accuracy-csv", "missing.csv", "--latency-csv", "LAT"],
     "cannot read 'missing.csv'"),
])
def test_search_cli_rejects_bad_table_options(run_cli, tables, tmp_path, extra, needle):
    extra = [str(tables[0]) if x == "ACC" else str(tables[1]) if x == "LAT" else x
             for x in extra]
    code, _, err = run_cli("search", "--space", "nb201", "--latency-target-ms", "5",
                           "--trials", "2", "--out", str(tmp_path / "r"), *extra)
    assert code == 2 and needle in err and "Traceback" not in err


@needs_nb201
def test_real_nb201_tables_and_exact_constrained_optimum():
    space = get_space("nb201")
    bench = TabularBenchmark.from_csv(space=space, accuracy_csv=NB201_DATA / "accuracy.csv",
                                      latency_csv=NB201_DATA / "latency_pixel3.csv")
    assert len(bench) == 15_625
    assert bench.accuracy[C] == pytest.approx(0.10)  # SOURCE.md: all-none cell at chance
    assert max(bench.accuracy.values()) == pytest.approx(0.943733, abs=1e-6)
    target = statistics.median(bench.latency.values())
    arch, acc = bench.constrained_optimum(target)
    # brute force straight from the files, independent of the reader
    archs = (NB201_DATA / "archs.txt").read_text().split()
    with (NB201_DATA / "accuracy.csv").open() as f:
        accs = {int(r["index"]): float(r["cifar10_test"]) for r in csv.DictReader(f)}
    with (NB201_DATA / "latency_pixel3.csv").open() as f:
        lats = {int(r["index"]): float(r["latency_ms"]) for r in csv.DictReader(f)}
    best = max((accs[i], i) for i in lats if lats[i] <= target)
    assert archs[best[1]] == arch and acc == pytest.approx(best[0] / 100)
    assert bench.latency[arch] <= target


def test_table_search_inputs_from_typed_options(tables):
    from mobile_nas.search.table_evaluator import table_search_inputs

    acc, lat = map(str, tables)
    assert table_search_inputs(space="nb201") == (None, None)
    evaluator, latency_fn = table_search_inputs(space="nb201", evaluator="table",
                                                accuracy_csv=acc)
    assert latency_fn is None and evaluator.describe()["entries"] == 3
    arch = get_space("nb201").decode(B)
    assert evaluator.evaluate(arch) == pytest.approx(0.86)
    evaluator, latency_fn = table_search_inputs(space="nb201", evaluator="table",
                                                accuracy_csv=acc, latency_csv=lat)
    assert latency_fn(arch) == 4.0 and evaluator.evaluate(arch) == pytest.approx(0.86)
    # inconsistent settings: the fields name the parameters, the message no flag
    with pytest.raises(SettingError, match="one latency source: latency_csv, table or") as info:
        table_search_inputs(space="nb201", evaluator="table", accuracy_csv=acc,
                            latency_csv=lat, table="t.json")
    assert (info.value.what, info.value.others) == ("latency_csv", ("table", "measure"))
    with pytest.raises(SettingError, match="latency_csv need evaluator table") as info:
        table_search_inputs(space="nb201", latency_csv=lat)
    assert (info.value.what, info.value.others) == ("accuracy_csv", ("latency_csv", "evaluator"))
    with pytest.raises(SettingError, match="^precision int8 selects the latency table") as info:
        table_search_inputs(space="nb201", evaluator="table", accuracy_csv=acc,
                            latency_csv=lat, precision="int8")
    assert (info.value.what, info.value.value) == ("precision", "int8")
    assert "--" not in str(info.value)
