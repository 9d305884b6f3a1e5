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
