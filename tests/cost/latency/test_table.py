import json
import math
import zipfile
from pathlib import Path

import pytest

from mobile_nas.cost.latency import (
    Calibration,
    LatencyTable,
    LatencyTableError,
    LayerLatency,
    resolve_table,
    shipped_table_path,
)
from mobile_nas.cost.latency.table import SCHEMA_VERSION
from mobile_nas.space import LayerKey

KEY = LayerKey("mb", 16, 24, 14, 14, kernel=3, stride=2, expansion=6, act="relu")


def _table() -> LatencyTable:
    return LatencyTable(space="fmnist28", metadata={"device": "test", "threads": 1},
                        entries={KEY.id: LayerLatency(median_ms=0.12, iqr_ms=0.01, n=30)},
                        calibration=Calibration(overhead_ms=0.1, scale=1.0, per_layer_ms=-0.02,
                                                archs=("a",), measured_ms=(1.0,)))


def test_save_load_round_trip(tmp_path):
    path = tmp_path / "t.json"
    _table().save(path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert list(data["entries"]) == [KEY.id]
    loaded = LatencyTable.load(path)
    assert loaded == _table()
    assert KEY in loaded and loaded.get(KEY).median_ms == 0.12
    assert not list(tmp_path.glob(".*.tmp"))


def test_with_entries_returns_new_table():
    t = _table()
    other = LayerKey("stem", 1, 16, 28, 28, kernel=3, act="relu")
    t2 = t.with_entries({other.id: LayerLatency(median_ms=0.05, iqr_ms=0.0, n=3)})
    assert len(t) == 1 and len(t2) == 2
    assert t2.missing([KEY, other, LayerKey("head", 96, 256, 4, 4)]) == [
        LayerKey("head", 96, 256, 4, 4).id]


@pytest.mark.parametrize("text, match", [
    ("{\"schema_version\": 1, \"space\": ", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ("{\"schema_version\": 99, \"space\": \"x\", \"entries\": {}}", "schema_version 99"),
    ("{\"schema_version\": 1, \"space\": \"x\", \"entries\": {\"bogus\": {}}}", "bogus"),
    ("{\"schema_version\": 1, \"space\": \"x\", \"entries\": {\"" + KEY.id
     + "\": {\"median_ms\": -1, \"iqr_ms\": 0, \"n\": 3}}}", "positive"),
    ("{\"schema_version\": 1, \"space\": \"x\", \"entries\": {\"" + KEY.id
     + "\": {\"median_ms\": NaN, \"iqr_ms\": 0, \"n\": 3}}}", "positive finite"),
])
def test_bad_tables_raise_one_clear_error(tmp_path, text, match):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(LatencyTableError, match=match):
        LatencyTable.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(LatencyTableError, match="cannot read"):
        LatencyTable.load(tmp_path / "nope.json")


def test_calibration_apply():
    c = _table().calibration
    assert math.isclose(c.apply(2.0, 10), 0.1 + 2.0 - 0.2)




def test_min_statistic_needs_min_entries(tmp_path):
    data = _table().to_json()
    data["metadata"]["statistic"] = "min"
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match="lack min_ms"):
        LatencyTable.load(path)
    data["metadata"]["statistic"] = "mode"
    path.write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match="unknown statistic 'mode'"):
        LatencyTable.load(path)


@pytest.mark.parametrize("space", ["fmnist28", "mobile224"])
def test_shipped_tables_record_their_device_and_cover_references(space):
    from mobile_nas.space import REFERENCE_ARCHS, get_space

    path = shipped_table_path(space)
    assert path is not None, f"latency_tables/{space}.json is missing"
    table = LatencyTable.load(path)
    md = table.metadata
    assert table.space == space and md["threads"] == 1 and md["opset"] == 17
    assert md["onnxruntime"] and md["cpu"] and md["provider"] == "CPUExecutionProvider"
    assert table.calibration is not None and len(table.calibration.archs) >= 8
    sp = get_space(space)
    if md.get("restricted_to_archs") is None:
        assert len(table) == len(sp.enumerate_layers())
    for name in REFERENCE_ARCHS.names():
        ref = REFERENCE_ARCHS.get(name)
        if ref.space == space:
            assert not table.missing(sp.layers(sp.decode(ref.arch))), name


def test_no_shipped_table_for_unknown_space():
    assert shipped_table_path("no-such-space") is None


def test_resolve_table_the_explicit_one_else_the_shipped_one(tmp_path):
    mine = tmp_path / "mine.json"
    assert resolve_table("fmnist28", mine) == mine
    assert resolve_table("fmnist28", None, "", str(mine)) == str(mine)  # first one given
    assert resolve_table("fmnist28") == resolve_table("fmnist28", None) \
        == shipped_table_path("fmnist28")
    assert resolve_table("no-such-space") is None


def test_shipped_table_is_package_data_of_the_top_level_tables():
    repo_tables = Path(__file__).resolve().parents[3] / "latency_tables"
    for path in sorted(repo_tables.glob("*.json")):
        shipped = shipped_table_path(path.stem)
        assert isinstance(shipped, Path) and shipped.read_bytes() == path.read_bytes()


def test_shipped_table_from_a_zipped_install_is_a_real_file(tmp_path, monkeypatch):
    from mobile_nas.cost.latency import table as table_module

    source = shipped_table_path("nb201")
    archive = tmp_path / "mobile_nas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("mobile_nas/latency_tables/nb201.json", source.read_bytes())
    monkeypatch.setattr(table_module, "_extracted", {})
    monkeypatch.setattr(table_module, "files",
                        lambda package: zipfile.Path(archive, f"{package}/"))
    path = shipped_table_path("nb201")
    assert isinstance(path, Path) and path.is_file()
    assert path.read_bytes() == source.read_bytes() and shipped_table_path("nb201") == path
    assert shipped_table_path("no-such-space") is None
