"""Calibration that cannot fool itself: enough networks to leave residual degrees of freedom,
judged on held-out networks, targeting the wall-clock median; exact numbers from synthetic
tables, fake end-to-end measurements and the fake timing backend."""

import json

import pytest

from mobile_nas.cost.latency import (
    WALL_MEDIAN,
    Calibration,
    LatencyPredictor,
    LatencyStatistic,
    LatencyTable,
    LatencyTableError,
    LayerLatency,
)
from mobile_nas.cost.latency.build import build_lut, layer_keys
from mobile_nas.cost.latency.calibrate import (
    MIN_FIT_NETWORKS,
    CalibrationPlan,
    calibrate_table,
    fit_calibration,
    held_out_check,
    plan_calibration,
    recalibration_plan,
)
from mobile_nas.cost.latency.settings import ProfileSettings
from mobile_nas.space import REFERENCE_ARCHS, Architecture

from .conftest import SMALL_ARCH, SMALL_VARIANTS
from .fakes import FakeMachine, layer_ms, linear_measure


def _synthetic(space, keys, *, clock="wall", statistic="median", fastest=1.0):
    """A table of ``keys`` with the fake layer times as medians, ``fastest`` x them as mins."""
    return LatencyTable(space=space.name, metadata={"clock": clock, "statistic": statistic},
                        entries={k.id: LayerLatency(median_ms=layer_ms(k), iqr_ms=0.0, n=30,
                                                    min_ms=round(layer_ms(k) * fastest, 6))
                                 for k in keys})


@pytest.fixture
def small_table(fmnist, small_arch):
    return _synthetic(fmnist, layer_keys(fmnist, [small_arch]))


def test_fit_refuses_too_few_networks():
    for n in range(MIN_FIT_NETWORKS):
        with pytest.raises(LatencyTableError, match="at least 3 measured networks"):
            fit_calibration([1.0, 2.0][:n], [5, 6][:n], [1.1, 2.1][:n])


def test_fit_keeps_residual_degrees_of_freedom():
    sums, layers = [1.0, 2.0, 3.0, 5.0, 8.0], [10, 12, 9, 15, 20]
    measured = [0.2 + 0.9 * s - 0.01 * n for s, n in zip(sums, layers, strict=True)]
    three = fit_calibration(sums, layers, measured)  # 5 networks: 3 coefficients, 2 left
    assert (three.overhead_ms, three.scale, three.per_layer_ms) == (
        pytest.approx(0.2), pytest.approx(0.9), pytest.approx(-0.01))
    assert (three.coefficients, three.residual_dof) == (3, 2)
    assert three.target == WALL_MEDIAN and three.held_out is None
    two = fit_calibration(sums[:4], layers[:4], [0.1 + 1.2 * s for s in sums[:4]])
    assert (two.coefficients, two.residual_dof) == (2, 2)
    assert (two.overhead_ms, two.scale, two.per_layer_ms) == (
        pytest.approx(0.1), pytest.approx(1.2), 0.0)


def test_held_out_check_exact_figures():
    cal = Calibration(overhead_ms=0.1, scale=1.0, per_layer_ms=0.0, archs=("a", "b", "c"))
    check = held_out_check(cal, [0.9, 1.9, 3.9, 0.4], [5, 5, 5, 5], [1.0, 2.1, 4.4, 0.5],
                           ["d", "e", "f", "g"])
    # predictions 1.0, 2.0, 4.0, 0.5: errors 0%, -4.76%, -9.09%, 0%
    assert check.predicted_ms == pytest.approx((1.0, 2.0, 4.0, 0.5))
    assert check.mape == pytest.approx((0 + 100 * 0.1 / 2.1 + 100 * 0.4 / 4.4 + 0) / 4)
    assert (check.n, check.within_5, check.within_10) == (4, 0.75, 1.0)
    assert check.summary().startswith("held-out check on 4 networks not used in the fit: MAPE")
    with pytest.raises(LatencyTableError, match="used in the fit"):
        held_out_check(cal, [1.0], [5], [1.0], ["b"])


def test_plan_is_disjoint_seeded_and_includes_first(fmnist, small_variants):
    plan = plan_calibration(fmnist, include=small_variants[:2], n_fit=4, n_held_out=3, seed=7)
    assert len(plan.fit) == 4 and len(plan.held_out) == 3
    assert plan.fit[:2] == tuple(small_variants[:2])
    assert not {a.to_string() for a in plan.fit} & {a.to_string() for a in plan.held_out}
    again = plan_calibration(fmnist, include=small_variants[:2], n_fit=4, n_held_out=3, seed=7)
    assert again == plan  # same seed, same networks
    other = plan_calibration(fmnist, include=small_variants[:2], n_fit=4, n_held_out=3, seed=8)
    assert other.held_out != plan.held_out
    # references come right after the included networks (unless told otherwise)
    refs = plan_calibration(fmnist, n_fit=3, n_held_out=2, seed=7)
    assert {a.to_string() for a in refs.fit[:2]} == {
        REFERENCE_ARCHS.get(n).arch for n in ("fmnist28_mnasnet", "fmnist28_mobilenet_v2")}
    assert len(refs.sampled) == 3
    with pytest.raises(LatencyTableError, match="at least 3 networks to fit and 2 held out"):
        plan_calibration(fmnist, n_fit=2, n_held_out=2)
    with pytest.raises(LatencyTableError, match="at least 3 networks to fit and 2 held out"):
        plan_calibration(fmnist, n_fit=3, n_held_out=1)


def test_plan_can_fit_a_share_on_neighbours_of_the_references(fmnist):
    refs = [Architecture.from_string(REFERENCE_ARCHS.get(n).arch, "fmnist28")
            for n in ("fmnist28_mnasnet", "fmnist28_mobilenet_v2")]

    def edits(a, b) -> int:
        return sum(x != y for x, y in zip(a.indices(), b.indices(), strict=True))

    plan = plan_calibration(fmnist, n_fit=40, n_held_out=8, seed=3, near_references=0.25)
    near = plan.fit[2:12]  # 40 // 4 = 10: 5 per reference, right after the references
    assert all(1 <= min(edits(a, r) for r in refs) <= 3 for a in near)
    far = [a for a in plan.fit[12:] + plan.held_out if min(edits(a, r) for r in refs) > 3]
    assert len(far) >= 30  # the rest are uniform draws (24 decisions: rarely within 3)
    assert plan_calibration(fmnist, n_fit=40, n_held_out=8, seed=3,
                            near_references=0.25) == plan
    default = plan_calibration(fmnist, n_fit=40, n_held_out=8, seed=3)
    assert sum(min(edits(a, r) for r in refs) <= 3 for a in default.fit[2:]) < 5


def test_plan_only_takes_networks_the_table_covers(fmnist, small_table, small_variants):
    plan = plan_calibration(fmnist, covers=small_table, include=small_variants, n_fit=3,
                            n_held_out=3, seed=0)
    assert [a.to_string() for a in plan.archs] == SMALL_VARIANTS
    with pytest.raises(LatencyTableError, match="only 6 networks"):
        plan_calibration(fmnist, covers=small_table, include=small_variants, n_fit=5,
                         n_held_out=2, seed=0)


def test_calibrate_table_fits_on_some_and_checks_on_the_others(fmnist, small_table,
                                                              small_variants):
    plan = CalibrationPlan(fit=tuple(small_variants[:4]), held_out=tuple(small_variants[4:]),
                           seed=3)
    calls = []
    measure = linear_measure(fmnist, lambda: small_table, overhead_ms=0.05, scale=1.25,
                             calls=calls)
    table = calibrate_table(small_table, plan, measure=measure)
    assert calls == [SMALL_VARIANTS]  # one interleaved run: fit and held-out together
    cal = table.calibration
    assert cal.archs == tuple(SMALL_VARIANTS[:4]) and cal.seed == 3
    assert (cal.overhead_ms, cal.scale) == (pytest.approx(0.05), pytest.approx(1.25))
    assert cal.held_out.archs == tuple(SMALL_VARIANTS[4:])
    assert cal.held_out.mape == pytest.approx(0.0, abs=1e-9) and cal.held_out.within_5 == 1.0
    # a disturbed held-out measurement shows in the check, not in the fit
    disturbed = linear_measure(fmnist, lambda: small_table, overhead_ms=0.05, scale=1.25,
                               disturb={4: 1.25})
    worse = calibrate_table(small_table, plan, measure=disturbed).calibration
    assert (worse.overhead_ms, worse.scale) == (pytest.approx(0.05), pytest.approx(1.25))
    assert worse.held_out.errors_pct[0] == pytest.approx(-20.0)
    assert worse.held_out.mape == pytest.approx(10.0) and worse.held_out.within_10 == 0.5


def test_calibrate_table_refuses_a_plan_without_held_out(small_table, small_variants):
    plan = CalibrationPlan(fit=tuple(small_variants[:4]), held_out=(), seed=0)
    with pytest.raises(LatencyTableError, match="2 held out"):
        calibrate_table(small_table, plan, measure=lambda archs: [1.0] * len(archs))


def test_cpu_min_table_predicts_the_wall_clock_median(fmnist, small_arch, small_variants):
    """A table of CPU-clock minimums maps, through its calibration, to the wall-clock
    median end-to-end measurement: the quantity users (and 'bench') measure."""
    keys = layer_keys(fmnist, [small_arch])
    table = _synthetic(fmnist, keys, clock="cpu", statistic="min", fastest=0.8)
    assert table.predicts == "uncalibrated sum of layer cpu-clock mins"
    wall = _synthetic(fmnist, keys)  # wall medians = min / 0.8; networks add 0.03 ms

    def measure(archs):
        return [0.03 + sum(wall.entries[k.id].median_ms for k in fmnist.runtime_layers(a))
                for a in archs]

    plan = CalibrationPlan(fit=tuple(small_variants[:4]), held_out=tuple(small_variants[4:]),
                           seed=0)
    calibrated = calibrate_table(table, plan, measure=measure)
    cal = calibrated.calibration
    assert cal.target == LatencyStatistic("wall", "median")
    assert (cal.overhead_ms, cal.scale) == (pytest.approx(0.03), pytest.approx(1 / 0.8))
    assert calibrated.predicts == "wall-clock median"
    assert calibrated.prediction_statistic == WALL_MEDIAN
    pred = LatencyPredictor(calibrated).predict(small_arch)
    assert pred.statistic == "wall-clock median"
    assert pred.total_ms == pytest.approx(measure([small_arch])[0])


def test_recalibration_reuses_the_roles_of_the_last_calibration(fmnist, small_table,
                                                               small_variants):
    plan = CalibrationPlan(fit=tuple(small_variants[1:4]), held_out=tuple(small_variants[4:]),
                           seed=0)
    measure = linear_measure(fmnist, lambda: small_table, overhead_ms=0.05, scale=1.25)
    table = calibrate_table(small_table, plan, measure=measure)
    again = recalibration_plan(table, fmnist, n_fit=3, n_held_out=2)
    assert again.fit == plan.fit and again.held_out == plan.held_out


def test_build_with_arch_adds_random_networks_and_ends_checked(tmp_path, fmnist, small_arch):
    """``lut build --arch`` with one network: the layers of seeded random networks are added
    until 3 can fit and 2 be held out; all timing is fake, every figure exact."""
    settings = ProfileSettings(rounds=2, runs_per_round=1, warmup=0, chunk=16, clock="cpu",
                               statistic="min")
    out = tmp_path / "t.json"
    machine = FakeMachine(settings)
    holder = {}

    def current():
        return holder.setdefault("t", LatencyTable.load(out))

    measure = linear_measure(fmnist, current, overhead_ms=0.02, scale=1.1)
    result = build_lut(fmnist, out, archs=[small_arch], settings=settings, n_fit=3,
                       n_held_out=2, seed=5, progress=False, backend=machine.backend(),
                       measure=measure)
    table = result.table
    sample = table.metadata["calibration_sample"]
    assert sample["seed"] == 5 and len(sample["archs"]) == 4 == len(result.sampled)
    expected = plan_calibration(fmnist, include=[small_arch], n_fit=3, n_held_out=2, seed=5,
                                references=False)
    assert sample["archs"] == [a.to_string() for a in expected.sampled]
    covered = [small_arch, *(Architecture.from_string(a, "fmnist28") for a in sample["archs"])]
    assert set(table.entries) == {k.id for k in layer_keys(fmnist, covered)}
    assert table.metadata["restricted_to_archs"] == [a.to_string() for a in covered]
    cal = table.calibration
    assert cal.archs[0] == SMALL_ARCH and len(cal.archs) == 3 and cal.held_out.n == 2
    assert (cal.overhead_ms, cal.scale) == (pytest.approx(0.02), pytest.approx(1.1))
    assert cal.held_out.mape == pytest.approx(0.0, abs=1e-9) and cal.target == WALL_MEDIAN
    assert result.calibrated and json.loads(out.read_text())["calibration"]["held_out"]["n"] == 2
    record = result.to_json()
    assert record["held_out_check"]["within_10"] == 1.0
    assert record["predicts"] == "wall-clock median" and record["sentinel_events"] == 0
    # a resumed build with nothing new keeps its checked calibration
    again = build_lut(fmnist, out, archs=[small_arch], settings=settings, n_fit=3,
                      n_held_out=2, seed=5, resume=True, progress=False,
                      backend=FakeMachine(settings).backend(), measure=measure)
    assert not again.calibrated and again.table.calibration == cal


def test_build_without_calibration_predicts_a_named_plain_sum(tmp_path, fmnist, small_arch):
    settings = ProfileSettings(rounds=1, runs_per_round=1, warmup=0)
    result = build_lut(fmnist, tmp_path / "t.json", archs=[small_arch], settings=settings,
                       n_fit=0, n_held_out=0, progress=False,
                       backend=FakeMachine(settings).backend())
    assert result.table.calibration is None and result.sampled == ()
    assert set(result.table.entries) == {k.id for k in layer_keys(fmnist, [small_arch])}
    pred = LatencyPredictor(result.table).predict(small_arch)
    assert pred.statistic == "uncalibrated sum of layer wall-clock medians"
    assert pred.total_ms == pytest.approx(sum(layer_ms(k) for k in fmnist.layers(small_arch)))


def test_recalibrating_a_table_of_too_few_networks_names_the_build(tmp_path, fmnist,
                                                                  small_table):
    from mobile_nas.cost.latency.build import recalibrate_lut

    path = tmp_path / "t.json"
    small_table.with_metadata(restricted_to_archs=SMALL_VARIANTS).save(path)
    with pytest.raises(LatencyTableError) as info:
        recalibrate_lut(path, n_fit=8, n_held_out=6, measure=lambda archs: [1.0] * len(archs))
    msg = str(info.value)
    assert msg.startswith("only 6 networks of space 'fmnist28' are covered")
    assert f"mobile-nas lut build --space fmnist28 --arch '{SMALL_ARCH}' --out {path} " \
           f"--resume" in msg
    # enough networks: refitted, checked and written back
    done = recalibrate_lut(path, n_fit=4, n_held_out=2,
                           measure=lambda archs: [0.1 * (i + 1) for i in range(len(archs))])
    assert done.calibrated and LatencyTable.load(path).calibration.held_out.n == 2


def test_the_fix_command_turns_a_legacy_table_into_a_checked_one(tmp_path, fmnist,
                                                                small_arch):
    """What the legacy warning tells users to run: 'lut build --resume' with the table's own
    protocol keeps its entries and replaces the in-sample calibration by a checked one."""
    import shlex
    from pathlib import Path

    from mobile_nas.cost.latency.requirements import lut_build_command

    legacy = Path(__file__).parent / "data" / "legacy_v1_table.json"
    path = tmp_path / "legacy.json"
    path.write_bytes(legacy.read_bytes())
    old = LatencyTable.load(path)
    cmd = shlex.split(lut_build_command(old, path))
    assert cmd[cmd.index("--arch") + 1] == SMALL_ARCH and cmd[-1] == "--resume"
    settings = ProfileSettings(clock=cmd[cmd.index("--clock") + 1],
                               statistic=cmd[cmd.index("--statistic") + 1],
                               rounds=int(cmd[cmd.index("--rounds") + 1]),
                               runs_per_round=int(cmd[cmd.index("--runs-per-round") + 1]))
    holder = {}
    measure = linear_measure(fmnist, lambda: holder.setdefault("t", LatencyTable.load(path)),
                             overhead_ms=0.01, scale=1.3)
    result = build_lut(fmnist, path, archs=[small_arch], settings=settings, n_fit=3,
                       n_held_out=2, seed=1, resume=True, progress=False,
                       backend=FakeMachine(settings).backend(), measure=measure)
    table = LatencyTable.load(path)
    assert json.loads(path.read_text())["schema_version"] == 3
    assert all(table.entries[k] == v for k, v in old.entries.items())  # kept, not re-timed
    cal = table.calibration
    assert not cal.legacy and cal.held_out.n == 2 and cal.target == WALL_MEDIAN
    assert (cal.overhead_ms, cal.scale) == (pytest.approx(0.01), pytest.approx(1.3))
    assert result.calibrated and len(result.sampled) == 4
