"""cost/summary.py: what `cost` and `transfer` report, from typed arguments."""

import json
from types import SimpleNamespace

import pytest

from mobile_nas.cost.latency import LatencyTable, shipped_table_path
from mobile_nas.cost.model_costs import model_costs
from mobile_nas.cost.summary import summarize_costs, transfer_costs
from mobile_nas.errors import MobileNasError, SpaceError
from mobile_nas.space import load_arch
from mobile_nas.space.scaled import SizeKnobs

NB201 = "|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|"


def test_static_costs_only_without_table_or_measure():
    arch = load_arch("fmnist28_mnasnet", None)
    s = summarize_costs(arch)
    assert (s.latency_ms, s.measured_ms) == (None, None)
    assert s.to_json() == {"arch": arch.to_string(), "space": "fmnist28",
                           "macs": model_costs(arch).macs, "params": model_costs(arch).params}


def test_table_adds_the_prediction_rounded():
    arch = load_arch("fmnist28_mnasnet", None)
    s = summarize_costs(arch, table=shipped_table_path("fmnist28"))
    assert list(s.to_json()) == ["arch", "space", "macs", "params", "latency_ms",
                                 "latency_statistic", "latency_table", "threads", "provider",
                                 "precision"]
    assert s.latency_statistic == "wall-clock median"  # what the shipped table predicts
    assert (s.threads, s.provider, s.precision) == (1, "CPUExecutionProvider", "fp32")
    assert 0 < s.latency_ms < 5 and s.latency_ms == round(s.latency_ms, 4)


@pytest.mark.parametrize("with_table", [False, True])
def test_measure_follows_the_table_settings(monkeypatch, with_table):
    """Without a table: 1 thread, wall clock, median; with the shipped fmnist28 table: its
    threads, provider and clock, and the statistic it predicts (the wall-clock median)."""
    import mobile_nas.cost.latency.measure as measure

    calls = []

    def fake(arch, **kw):
        calls.append(kw)
        return SimpleNamespace(median_ms=0.123456, min_ms=0.1)

    monkeypatch.setattr(measure, "measure_arch_ms", fake)
    table = shipped_table_path("fmnist28") if with_table else None
    s = summarize_costs(load_arch("fmnist28_mnasnet", None), table=table, measure=True)
    (kw,) = calls
    if with_table:
        md = LatencyTable.load(table).metadata
        assert (kw["threads"], kw["provider"], kw["clock"]) == (md["threads"], md["provider"],
                                                                md["clock"])
        assert s.measured_ms == 0.1235
    else:
        assert (kw["threads"], kw["provider"], kw["clock"]) == (1, "CPUExecutionProvider",
                                                                "wall")
        assert s.measured_ms == 0.1235
    assert kw["runs"] == 100 and kw["warmup"] == 10 and kw["precision"] == "fp32"


def test_transfer_costs_both_sizes_and_their_ratio(tmp_path):
    arch = load_arch(NB201, "nb201")
    t = transfer_costs(arch, SizeKnobs(cells=2, filters=32))
    assert t.target.arch.space == "nb201@n2-f32-3x32x32-k10"
    assert t.target.arch.values == arch.values
    assert t.target.macs > t.source.macs
    assert t.ratio == {"macs": round(t.target.macs / t.source.macs, 3),
                       "params": round(t.target.params / t.source.params, 3)}
    record = t.to_json()
    assert record["arch"] == NB201 and record["target"]["cells"] == 2
    assert record["source"]["input_shape"] == [3, 32, 32] and "arch" not in record["source"]
    t.save_target(tmp_path / "big.json")
    data = json.loads((tmp_path / "big.json").read_text())
    assert data["schema_version"] == 1 and data["macs"] == t.target.macs
    assert load_arch(str(tmp_path / "big.json"), None) == t.target.arch


def test_transfer_without_knobs_is_the_canonical_scaled_space():
    t = transfer_costs(load_arch(NB201, "nb201"), SizeKnobs())
    assert t.target.arch.space == "nb201@n5-f16-3x32x32-k10"
    assert t.ratio["macs"] == 1.0


def test_transfer_errors():
    with pytest.raises(SpaceError, match="no size knobs"):
        transfer_costs(load_arch("fmnist28_mnasnet", None), SizeKnobs(cells=2))
    t = transfer_costs(load_arch(NB201, "nb201"), SizeKnobs(cells=1))
    with pytest.raises(MobileNasError, match="cannot write '/nonexistent/x.json'"):
        t.save_target("/nonexistent/x.json")

