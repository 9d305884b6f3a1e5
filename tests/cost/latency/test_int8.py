"""INT8 as a table dimension: ``lut build --precision int8`` exports every layer and every
calibration network as for fp32, quantizes it with ``export --int8``'s quantizer and times
that QDQ graph; an INT8 table never mixes with an fp32 one. Sessions are intercepted (their
ONNX graphs recorded) and timed on a fake clock: no real timing anywhere."""

import dataclasses
import functools
import json
import time
from types import SimpleNamespace

import onnx
import pytest

import mobile_nas.cost.latency.measure as measure
import mobile_nas.cost.latency.profiler as profiler
from mobile_nas.cost.latency import LatencyTable, LatencyTableError, LayerLatency
from mobile_nas.cost.latency.build import build_lut, layer_keys
from mobile_nas.cost.latency.export import export_arch_onnx, export_layer_onnx
from mobile_nas.cost.latency.profiler import build_table, onnxruntime_backend
from mobile_nas.cost.latency.runner import time_interleaved
from mobile_nas.cost.latency.sentinel import sentinel_onnx
from mobile_nas.cost.latency.settings import ProfileSettings

from .conftest import SMALL_ARCH
from .fakes import MS, FakeMachine, FakeSession

QDQ = {"QuantizeLinear", "DequantizeLinear"}
INT8 = ProfileSettings(rounds=2, runs_per_round=1, warmup=0, chunk=16, precision="int8")


def _ops(model: bytes) -> set[str]:
    return {n.op_type for n in onnx.load_from_string(model).graph.node}


def _fake_ms(model: bytes) -> float:
    """A fake latency that is a function of the graph: 1 µs per node."""
    return 0.001 * len(onnx.load_from_string(model).graph.node)


def test_an_int8_layer_is_the_export_int8_quantizers_qdq_graph(fmnist, small_arch, monkeypatch):
    import mobile_nas.onnx_quantize as quantize

    calls = []
    real = quantize.quantize_static_int8

    def spy(fp32_path, out, images, **kw):
        calls.append((tuple(images.shape), str(images.dtype), kw))
        return real(fp32_path, out, images, **kw)

    monkeypatch.setattr(quantize, "quantize_static_int8", spy)
    key = next(k for k in fmnist.layers(small_arch) if k.op == "mb")
    fp32 = export_layer_onnx(key)
    t0 = time.perf_counter()
    int8 = export_layer_onnx(key, precision="int8")
    seconds = time.perf_counter() - t0
    print(f"export + quantize of {key.id}: {seconds:.2f} s")  # indicative (pytest -s)
    assert not _ops(fp32) & QDQ and QDQ <= _ops(int8)
    # the quantizer of export --int8, with its defaults (minmax, per-channel weights), on
    # uint8 images of the layer's input shape
    assert calls == [((8, key.cin, key.h, key.w), "torch.uint8", {})]
    graph = onnx.load_from_string(int8).graph
    assert [i.name for i in graph.input] == ["input"]
    int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert int8_weights, "weights are stored as int8"
    assert export_layer_onnx(key, precision="int8") == int8  # seeded: the same bytes


def test_an_int8_network_export_is_qdq(fmnist, small_arch):
    ops = _ops(export_arch_onnx(small_arch, precision="int8"))
    assert QDQ <= ops and "Conv" in ops


def test_int8_build_times_qdq_layers_and_calibrates_on_int8_networks(tmp_path, monkeypatch,
                                                                     fmnist, small_arch,
                                                                     small_variants):
    """``build_lut`` with the onnxruntime backend and end-to-end measurement, the sessions
    replaced by fakes that record their graph: every layer and every calibration network
    was the INT8 QDQ graph, and the calibration fitted on their (fake) INT8 times."""
    machine = FakeMachine(INT8)
    opened: list[bytes] = []

    def load_session(model, **kw):
        opened.append(model)
        return FakeSession(machine, _fake_ms(model))

    monkeypatch.setattr(measure, "load_session", load_session)  # calibration networks
    monkeypatch.setattr(profiler, "load_session", load_session)  # layers
    monkeypatch.setattr(measure, "time_interleaved",
                        functools.partial(time_interleaved, timer=machine.clock))
    backend = dataclasses.replace(onnxruntime_backend(),  # real export, fake session
                                  sentinel_session=lambda settings: machine.sentinel,
                                  timer=machine.clock)
    out = tmp_path / "int8.json"
    result = build_lut(fmnist, out, archs=small_variants, settings=INT8, n_fit=3,
                       n_held_out=2, progress=False, backend=backend)
    table = LatencyTable.load(out)
    keys = layer_keys(fmnist, [small_arch])
    assert table.precision == "int8" == json.loads(out.read_text())["metadata"]["precision"]
    assert set(table.entries) == {k.id for k in keys} and result.sampled == ()
    layers, networks, anchor = opened[:len(keys)], opened[len(keys):-1], opened[-1]
    assert len(networks) == 5  # 3 fit + 2 held out, each exported once
    assert all(QDQ <= _ops(m) for m in layers + networks)
    assert anchor == sentinel_onnx()  # the anchor stays fp32, timed with the networks
    # chunks are a seeded random mix of the keys: compare the times as multisets
    assert sorted(e.median_ms for e in table.entries.values()) == \
        pytest.approx(sorted(_fake_ms(m) for m in layers), abs=1e-9)
    cal = table.calibration
    assert cal is not None and cal.held_out is not None and cal.held_out.n == 2
    measured = [*cal.measured_ms, *cal.held_out.measured_ms]
    assert measured == pytest.approx([round(_fake_ms(m) * MS) / MS for m in networks])
    assert result.to_json()["precision"] == "int8"


@pytest.mark.parametrize("old, new", [("fp32", "int8"), ("int8", "fp32")])
def test_resume_never_mixes_precisions(tmp_path, fmnist, old, new):
    keys = fmnist.enumerate_layers()[:3]
    out = tmp_path / "t.json"
    settings = ProfileSettings(rounds=1, runs_per_round=1, warmup=0, precision=old)
    build_table("fmnist28", keys[:2], out, settings=settings, progress=False,
                backend=FakeMachine(settings).backend())
    before = out.read_bytes()
    other = ProfileSettings(rounds=1, runs_per_round=1, warmup=0, precision=new)
    machine = FakeMachine(other)
    with pytest.raises(LatencyTableError) as info:
        build_table("fmnist28", keys, out, settings=other, resume=True, progress=False,
                    backend=machine.backend())
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"cannot resume {out}: it was built with ")
    assert f"precision={old!r}, this build has precision={new!r}" in msg
    assert out.read_bytes() == before and machine.opened == []  # nothing timed or written


def test_lut_build_int8_resume_of_an_fp32_table_is_one_line(run_cli, tmp_path, fmnist):
    out = tmp_path / "t.json"
    LatencyTable(space="fmnist28", metadata={"precision": "fp32"},
                 entries={k.id: LayerLatency(median_ms=0.01, iqr_ms=0.0, n=3)
                          for k in layer_keys(fmnist, [fmnist.decode(SMALL_ARCH)])}).save(out)
    before = out.read_bytes()
    code, stdout, err = run_cli("lut", "build", "--space", "fmnist28", "--arch", SMALL_ARCH,
                                "--precision", "int8", "--calibrate", "0", "--resume",
                                "--no-progress", "--out", str(out))
    assert code == 2 and stdout == "" and len(err.strip().splitlines()) == 1, err
    assert "precision='fp32', this build has precision='int8'" in err
    assert out.read_bytes() == before


def test_check_and_cost_measure_time_the_tables_precision(monkeypatch, tmp_path, fmnist,
                                                          small_arch, small_variants):
    """``lut check`` and ``cost --measure`` of an int8 table measure the INT8 export."""
    import mobile_nas.cost.latency.check as check
    from mobile_nas.cost.latency import Calibration, HeldOutCheck
    from mobile_nas.cost.summary import summarize_costs

    keys = layer_keys(fmnist, [small_arch])
    cal = Calibration(overhead_ms=0.0, scale=1.0, per_layer_ms=0.0, coefficients=1,
                      archs=tuple(a.to_string() for a in small_variants[:3]),
                      measured_ms=(0.1, 0.2, 0.3),
                      held_out=HeldOutCheck(archs=("x", "y"), measured_ms=(1.0, 2.0),
                                            predicted_ms=(1.0, 2.0)))
    table = LatencyTable(space="fmnist28", metadata={"precision": "int8"}, calibration=cal,
                         entries={k.id: LayerLatency(median_ms=0.01, iqr_ms=0.0, n=3)
                                  for k in keys})
    path = tmp_path / "int8.json"
    table.save(path)
    seen = []

    def fake_anchored(archs, anchor, **kw):
        seen.append(kw["precision"])
        return measure.AnchoredRun(fractions=(1.0,) * len(archs), anchor_ms=0.1,
                                   retest_pct=0.0, repeats=1, per_repeat=((1.0,) * len(archs),),
                                   anchor_per_repeat_ms=(0.1,))

    monkeypatch.setattr(measure, "measure_archs_anchored", fake_anchored)
    check.check_table(table, [("a", small_arch), ("b", small_variants[1])], repeats=1)
    monkeypatch.setattr(measure, "measure_arch_ms", lambda arch, **kw: (
        seen.append(kw["precision"]) or SimpleNamespace(median_ms=0.1, p50_ms=0.1, min_ms=0.1)))
    s = summarize_costs(small_arch, table=path, measure=True)
    assert seen == ["int8", "int8"] and s.precision == "int8"
    assert s.to_json()["precision"] == "int8"
