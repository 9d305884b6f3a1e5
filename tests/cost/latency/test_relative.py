"""Latency relative to a reference: targets (``REF``, ``0.9xREF``) parsed and resolved, the
ratio arithmetic of interleaved repeats on a fake clock, and the choice of a finalist. No real
timing anywhere."""

from __future__ import annotations

import pytest

from mobile_nas.cost.latency.errors import LatencyTargetError, MeasureError
from mobile_nas.cost.latency.relative import (
    FinalistRow,
    parse_latency_target,
    reference_for_target_ms,
    resolve_latency_target,
    select_finalist,
    time_against_reference,
)
from mobile_nas.space import REFERENCE_ARCHS, get_space
from tests.cost.latency.fakes import FakeClock, FakeNet

MNASNET = REFERENCE_ARCHS.get("fmnist28_mnasnet").arch
ARCH = "ds_k3_n1_c16_relu|mb6_k3_n3_c40_relu|mb6_k3_n1_c48_relu|mb6_k3_n1_c96_relu"


def _ms(arch) -> float:
    """A stand-in predictor: from the arch's channels and depths."""
    return sum(c.channels * c.layers for c in arch.search_space.stage_configs(arch)) / 100


# -- parsing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, factor, ref, kind", [
    ("fmnist28_mnasnet", 1.0, "fmnist28_mnasnet", "name"),
    ("0.9xfmnist28_mnasnet", 0.9, "fmnist28_mnasnet", "name"),
    ("1xfmnist28_mnasnet", 1.0, "fmnist28_mnasnet", "name"),
    (" 1.5 x fmnist28_mnasnet ", 1.5, "fmnist28_mnasnet", "name"),
    ("10Xmobilenet_v2", 10.0, "mobilenet_v2", "name"),
    (f"0.8x{ARCH}", 0.8, ARCH, "arch"),
    (ARCH, 1.0, ARCH, "arch"),
    ("0.9xruns/model.onnx", 0.9, "runs/model.onnx", "onnx"),
])
def test_targets_parse_to_a_factor_and_a_reference(text, factor, ref, kind):
    spec = parse_latency_target(text)
    assert (spec.factor, spec.reference, spec.kind) == (pytest.approx(factor), ref, kind)


@pytest.mark.parametrize("text", ["0xfmnist28_mnasnet", "11xfmnist28_mnasnet",
                                  "-0.5xfmnist28_mnasnet", "1.2.3xfmnist28_mnasnet",
                                  "1e9xfmnist28_mnasnet"])
def test_a_bad_factor_is_refused_with_its_fields(text):
    with pytest.raises(LatencyTargetError) as info:
        parse_latency_target(text)
    exc = info.value
    assert exc.what == "factor" and exc.text == text and "<= 10" in exc.allowed
    assert "\n" not in str(exc) and str(exc).startswith(f"latency target {text!r}: factor")
    assert exc.worded("--latency-target").startswith(f"--latency-target {text!r}: factor")


def test_an_empty_reference_is_refused():
    with pytest.raises(LatencyTargetError, match="reference '' is empty"):
        parse_latency_target("0.9x")


# -- resolving ---------------------------------------------------------------------------------
def test_a_reference_name_resolves_to_its_predicted_ms_times_the_factor():
    target = resolve_latency_target(parse_latency_target("0.9xfmnist28_mnasnet"), "fmnist28",
                                    _ms)
    ref = get_space("fmnist28").decode(MNASNET)
    assert target.reference_arch == ref and target.reference_name == "fmnist28_mnasnet"
    assert target.reference_predicted_ms == pytest.approx(_ms(ref))
    assert target.target_ms == pytest.approx(0.9 * _ms(ref))
    assert target.describe("T.json") == (f"target 0.9 x fmnist28_mnasnet = "
                                         f"{0.9 * _ms(ref):.3f} ms on T.json")


def test_an_arch_string_resolves_in_the_space():
    target = resolve_latency_target(parse_latency_target(f"2x{ARCH}"), "fmnist28", _ms)
    assert str(target.reference_arch) == ARCH
    assert target.target_ms == pytest.approx(2 * _ms(target.reference_arch))


def test_a_reference_of_another_space_is_refused_naming_its_space():
    with pytest.raises(LatencyTargetError) as info:
        resolve_latency_target(parse_latency_target("0.9xmobilenet_v2"), "fmnist28", _ms)
    msg = str(info.value)
    assert "belongs to space 'mobile224', not 'fmnist28'" in msg
    assert "fmnist28_mnasnet" in info.value.allowed and "\n" not in msg


def test_an_unknown_reference_is_refused_with_the_known_ones():
    with pytest.raises(LatencyTargetError, match="neither a reference name nor an arch") as info:
        resolve_latency_target(parse_latency_target("0.9xfmnist28_mnasnett"), "fmnist28", _ms)
    assert "fmnist28_mnasnet, fmnist28_mobilenet_v2" in info.value.allowed


def _onnx_file(path, **metadata):
    """A one-node ONNX model with ``metadata_props`` (what mobile-nas export writes)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph)
    for k, v in metadata.items():
        model.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    onnx.save(model, str(path))
    return str(path)


def test_an_onnx_file_resolves_through_its_arch_metadata(tmp_path):
    path = _onnx_file(tmp_path / "model.onnx", arch=ARCH, space="fmnist28")
    target = resolve_latency_target(parse_latency_target(f"0.5x{path}"), "fmnist28", _ms)
    assert str(target.reference_arch) == ARCH and target.reference_name == path
    assert target.target_ms == pytest.approx(0.5 * _ms(target.reference_arch))
    # a file is read whole, even when its name looks like a factor
    odd = _onnx_file(tmp_path / "2xnet.onnx", arch=ARCH, space="fmnist28")
    assert parse_latency_target(odd).factor == 1.0


def test_onnx_files_of_another_space_or_without_metadata_are_refused(tmp_path):
    other = _onnx_file(tmp_path / "other.onnx", arch=REFERENCE_ARCHS.get("mobilenet_v2").arch,
                       space="mobile224")
    with pytest.raises(LatencyTargetError, match="network of space 'mobile224'"):
        resolve_latency_target(parse_latency_target(other), "fmnist28", _ms)
    bare = _onnx_file(tmp_path / "bare.onnx")
    with pytest.raises(LatencyTargetError, match="no 'arch' in its metadata_props"):
        resolve_latency_target(parse_latency_target(bare), "fmnist28", _ms)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(LatencyTargetError, match="cannot be read as ONNX"):
        resolve_latency_target(parse_latency_target(str(junk)), "fmnist28", _ms)
    with pytest.raises(LatencyTargetError, match="does not exist"):
        resolve_latency_target(parse_latency_target(str(tmp_path / "gone.onnx")), "fmnist28",
                               _ms)


def test_a_millisecond_target_becomes_a_factor_of_the_first_reference():
    target = reference_for_target_ms(0.5, "fmnist28", _ms)
    assert target is not None and target.reference_name == "fmnist28_mnasnet"
    assert target.target_ms == 0.5
    assert target.factor == pytest.approx(0.5 / _ms(target.reference_arch))
    assert reference_for_target_ms(0.5, "nasnet", _ms) is None  # a space without references


# -- timing against the reference (fake clock) ---------------------------------------------------
def _timed(ms: dict, *, drift=lambda r: 1.0, jitter=None, repeats=3, rounds=4, runs=2,
           warmup=1):
    """``time_against_reference`` of fake nets: ``ms`` maps arch strings to milliseconds
    (the first is the reference)."""
    space = get_space("fmnist28")
    archs = [space.decode(a) for a in ms]
    clock = FakeClock(per_repeat=len(archs) * (warmup + rounds * runs), drift=drift)
    jitter = jitter or {}

    def factory(arch):
        s = str(arch)
        return FakeNet(clock, ms[s], jitter.get(s, lambda r: 1.0))

    return archs, time_against_reference(archs[1:], archs[0], repeats=repeats, rounds=rounds,
                                         runs_per_round=runs, warmup=warmup,
                                         session_factory=factory, timer=clock)


A = "mb3_k5_n2_c24_relu|mb6_k7_n1_c24_hswish|ds_k7_n1_c48_hswish_se|ds_k3_n3_c96_hswish_se"


def test_ratios_are_medians_over_the_reference_in_the_same_repeat():
    # the machine runs 1x, 2x, 1.5x as slow in the three repeats: ratios do not move
    archs, t = _timed({MNASNET: 0.4, ARCH: 0.3, A: 0.5}, drift=[1.0, 2.0, 1.5].__getitem__)
    assert t.reference == archs[0] and len(t.candidates) == 2
    assert t.reference_ms == pytest.approx((0.4, 0.8, 0.6))
    first, second = t.candidates
    assert first.arch == archs[1] and first.ratios == pytest.approx((0.75,) * 3)
    assert first.ratio == pytest.approx(0.75) and second.ratio == pytest.approx(1.25)
    assert first.median_ms == pytest.approx(0.45)  # median of 0.3, 0.6, 0.45
    assert t.noise_pct == pytest.approx(0.0, abs=1e-9)
    assert t.repeats == 3 and t.to_json()["clock"] == "wall"


def test_the_noise_floor_is_the_typical_largest_repeat_deviation():
    # ARCH measures 10% slower in repeat 1, A 4% faster in repeat 2
    _, t = _timed({MNASNET: 0.4, ARCH: 0.3, A: 0.5},
                  jitter={ARCH: lambda r: 1.1 if r == 1 else 1.0,
                          A: lambda r: 0.96 if r == 2 else 1.0})
    first, second = t.candidates
    assert first.ratios == pytest.approx((0.75, 0.825, 0.75))
    assert first.ratio == pytest.approx(0.75)  # the median repeat: one outlier moves nothing
    assert second.ratios == pytest.approx((1.25, 1.25, 1.2))
    assert t.noise_pct == pytest.approx((10 + 4) / 2)


def test_bad_timing_settings_are_refused():
    space = get_space("fmnist28")
    ref = space.decode(MNASNET)
    with pytest.raises(MeasureError, match="repeats must be >= 2"):
        time_against_reference([ref], ref, repeats=1, session_factory=lambda a: None)
    with pytest.raises(MeasureError, match="no candidates"):
        time_against_reference([], ref, session_factory=lambda a: None)


# -- choosing the finalist ---------------------------------------------------------------------
def _row(arch, acc, measured, predicted=0.8):
    return FinalistRow(arch=arch, accuracy=acc, predicted_ratio=predicted,
                       measured_ratio=measured, measured_ms=measured * 0.4)


def test_the_most_accurate_finalist_within_the_target_is_chosen():
    rows = [_row("a", 0.92, 0.95), _row("b", 0.91, 0.88), _row("c", 0.90, 0.70),
            _row("d", 0.91, 0.85)]
    choice = select_finalist(rows, 0.9, noise_pct=1.0)
    assert choice.chosen == rows[3]  # b and d tie on accuracy; d measured faster
    a, b, c, d = choice.verdicts
    assert not a.accepted and "over the target 0.9x by 5.6%" in a.reason
    assert b.accepted and not b.chosen and "less accurate" in b.reason
    assert c.accepted and d.chosen and d.margin_pct == pytest.approx(-100 * 0.05 / 0.9)
    line = choice.summary()
    assert line.startswith("finalist d: measured 0.850x the reference, target 0.9x")
    assert "3 of 4 measured within the target" in line and "\n" not in line


def test_the_choice_keeps_a_margin_of_the_runs_noise():
    """Target 0.9x with 2% noise: the line is 0.9 / 1.02 = 0.882x. a (0.91x) is over the
    target, b (0.89x) under it but within the noise of it: neither is taken; c (0.88x) is."""
    rows = [_row("a", 0.93, 0.91), _row("b", 0.92, 0.89), _row("c", 0.90, 0.88)]
    choice = select_finalist(rows, 0.9, noise_pct=2.0)
    assert choice.chosen == rows[2]
    assert [v.within_noise for v in choice.verdicts] == [True, True, False]
    assert "within the run's noise of ±2.0%, not taken" in choice.verdicts[1].reason
    assert "1 of 3 measured within the target by more than the noise" in choice.summary()


def test_none_within_the_target_says_so_in_one_line():
    choice = select_finalist([_row("a", 0.92, 1.10), _row("b", 0.90, 0.97)], 0.9,
                             noise_pct=1.5)
    assert choice.chosen is None and not any(v.accepted for v in choice.verdicts)
    assert choice.summary() == ("no finalist measured within the target 0.9x the reference "
                                "by more than the noise (closest 0.970x; run noise ±1.5%)")
    assert choice.to_json()["chosen"] is None
