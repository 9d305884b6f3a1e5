"""cost/latency/source.py: the one table resolve → load → predictor sequence, and the
measured source."""

import json

import pytest

from mobile_nas.cost.latency import (
    LatencyPredictor,
    LatencyTable,
    LatencyTableError,
    TableMismatchError,
    TableRequest,
    shipped_table_path,
)
from mobile_nas.cost.latency.source import MeasuredLatency, TableLatency, open_table
from mobile_nas.space import get_space, load_arch
from tests.search.conftest import synthetic_table_json


@pytest.fixture
def table_file(tmp_path):
    data = synthetic_table_json(get_space("fmnist28"))
    data["metadata"].update(threads=2, provider="XnnpackExecutionProvider")
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    return path


def test_the_shipped_table_when_none_is_given():
    source = open_table("fmnist28")
    shipped = shipped_table_path("fmnist28")
    assert isinstance(source, TableLatency) and not source.explicit
    assert source.path == shipped and source.name == f"table:{shipped}"
    arch = load_arch("fmnist28_mnasnet", "fmnist28")
    assert source.predict_ms(arch) == LatencyPredictor(LatencyTable.load(shipped)).predict(
        arch).total_ms
    assert (source.precision, source.threads, source.statistic) == (
        "fp32", 1, "wall-clock median")


def test_the_first_given_table_with_its_settings(table_file):
    source = open_table("fmnist28", None, table_file, "/not/read.json")
    assert source.explicit and source.path == table_file
    assert (source.threads, source.provider) == (2, "XnnpackExecutionProvider")
    assert open_table("nb201@n1-f8-r28-c1-k10") is None  # nothing shipped for a resized space


def test_a_request_the_table_does_not_meet_is_refused_with_its_fields(table_file):
    with pytest.raises(TableMismatchError) as info:
        open_table("fmnist28", table_file, request=TableRequest(threads=1))
    assert info.value.mismatches == (("threads", 2, 1),)


def test_a_table_of_another_space_is_refused_up_front_when_asked(table_file):
    assert open_table("nasnet", table_file).table.space == "fmnist28"  # refused on predict
    with pytest.raises(LatencyTableError, match="is for space 'fmnist28', not 'nasnet'"):
        open_table("nasnet", table_file, refuse_other_space=True)


def test_at_anchor_ms_scales_a_relative_tables_predictions():
    source = open_table("fmnist28")
    assert source.table.calibration.relative  # the shipped tables are relative (schema 3)
    arch = load_arch("fmnist28_mnasnet", "fmnist28")
    anchor = source.table.calibration.anchor_ms
    faster = source.at_anchor_ms(anchor / 2)
    assert faster.predict_ms(arch) == pytest.approx(source.predict_ms(arch) / 2)
    assert faster.path == source.path and faster.explicit == source.explicit


def test_measured_source_names_itself_and_times_the_export(monkeypatch):
    import mobile_nas.cost.latency.measure as measure

    calls = []

    class Timing:
        median_ms = 0.25

    def fake(arch, **kw):
        calls.append(kw)
        return Timing()

    monkeypatch.setattr(measure, "measure_arch_ms", fake)
    source = MeasuredLatency(threads=2, precision="int8")
    assert source.name == "measured:onnxruntime:2thread"
    assert source.predict_ms(load_arch("fmnist28_mnasnet", "fmnist28")) == 0.25
    assert calls == [{"threads": 2, "precision": "int8"}]
    assert (source.provider, source.statistic) == ("CPUExecutionProvider", "wall-clock median")
