import json

import pytest

from mobile_nas.cost.model_costs import model_costs
from mobile_nas.search.costs import (
    CostError,
    CostModel,
    macs_params,
    measured_latency_fn,
    table_latency_fn,
)
from tests.search.conftest import synthetic_table_json


def test_layer_sum_costs_equal_whole_model_costs(fmnist28):
    for seed in range(3):
        arch = fmnist28.sample(seed)
        mc = model_costs(arch)
        assert macs_params(arch) == (mc.macs, mc.params)


def test_table_latency_and_coverage_check(fmnist28, table_path, tmp_path):
    fn, source = table_latency_fn(fmnist28, table_path)
    arch = fmnist28.sample(0)
    costs = CostModel(latency_fn=fn, source=source)(arch)
    assert costs.latency_ms > 0 and costs.macs == model_costs(arch).macs
    assert source == f"table:{table_path}"
    partial = tmp_path / "t.json"
    partial.write_text(json.dumps(synthetic_table_json(fmnist28, drop=3)))
    with pytest.raises(CostError, match="lacks 3 layers"):
        table_latency_fn(fmnist28, partial)


def test_shipped_table_covers_fmnist28(fmnist28):
    fn, _ = table_latency_fn(fmnist28)
    assert 0.05 < fn(fmnist28.sample(1)) < 50


def test_measured_latency_times_the_exported_model(fmnist28):
    fn, source = measured_latency_fn()
    assert fn(fmnist28.sample(2)) > 0 and source.startswith("measured")


def _int8_table(space, path):
    data = synthetic_table_json(space)
    data["metadata"]["precision"] = "int8"
    path.write_text(json.dumps(data))
    return path


def test_int8_latency_comes_from_an_int8_table_only(fmnist28, table_path, tmp_path,
                                                    monkeypatch):
    import mobile_nas.cost.latency.ondemand as ondemand  # resolve_table's module
    from mobile_nas.cost.latency import TableMismatchError
    from mobile_nas.cost.latency.errors import TableSettingError

    real = ondemand.shipped_table_path
    shipped: dict[str, object] = {}
    monkeypatch.setattr(ondemand, "shipped_table_path", lambda space, precision="fp32": (
        shipped.get(precision) if precision != "fp32" else real(space)))
    # no shipped int8 table: the shipped fp32 one is refused, naming the build of an int8
    # one beside the user (not into the installed package)
    with pytest.raises(TableMismatchError) as info:
        table_latency_fn(fmnist28, precision="int8")
    msg = str(info.value)
    assert "\n" not in msg and "built for precision fp32, not the requested precision int8" in msg
    assert msg.endswith("build one with: mobile-nas lut build --space fmnist28 --precision "
                        "int8 --out fmnist28.precisionint8.json")
    with pytest.raises(TableMismatchError, match="precision fp32, not the requested"):
        table_latency_fn(fmnist28, table_path, precision="int8")
    int8 = _int8_table(fmnist28, tmp_path / "fmnist28_int8.json")
    fn, source = table_latency_fn(fmnist28, int8, precision="int8")
    assert fn(fmnist28.sample(0)) > 0 and source == f"table:{int8}"
    with pytest.raises(TableSettingError, match="int8, not the requested precision fp32") \
            as info:
        table_latency_fn(fmnist28, int8)  # the default fp32: the table's own is named too
    assert str(info.value).endswith("; or search its int8 latency with precision int8")
    assert (info.value.what, info.value.value, info.value.details["have"]) == (
        "precision", "fp32", "int8")
    assert isinstance(info.value.details["mismatch"], TableMismatchError)
    shipped["int8"] = int8  # latency_tables/<space>_int8.json is the default int8 table
    assert table_latency_fn(fmnist28, precision="int8")[1] == f"table:{int8}"
    assert table_latency_fn(fmnist28)[1] == f"table:{real('fmnist28')}"


def test_measured_int8_latency_times_the_int8_export(fmnist28, monkeypatch):
    from types import SimpleNamespace

    import mobile_nas.cost.latency.measure as measure

    seen = []
    monkeypatch.setattr(measure, "measure_arch_ms", lambda arch, **kw: (
        seen.append(kw) or SimpleNamespace(median_ms=0.5)))
    fn, _ = measured_latency_fn(precision="int8")
    assert fn(fmnist28.sample(0)) == 0.5 and seen == [{"threads": 1, "precision": "int8"}]
