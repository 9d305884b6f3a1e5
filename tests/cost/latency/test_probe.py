"""Reference probes: the arithmetic that places the reference among probe networks timed with
it, the probe draw, and the check's ratios against the probed reference. Fake clocks and
fake measurements only: no real timing is asserted."""

from __future__ import annotations

import pytest

from mobile_nas.cost.latency import LatencyPredictor, LatencyTable
from mobile_nas.cost.latency import check as check_module
from mobile_nas.cost.latency.check import check_table
from mobile_nas.cost.latency.errors import MeasureError
from mobile_nas.cost.latency.measure import AnchoredRun
from mobile_nas.cost.latency.probe import (
    ReferenceProbe,
    probe_archs,
    probe_reference,
    rebased_reference_ms,
)
from mobile_nas.cost.latency.relative import time_against_reference
from mobile_nas.cost.latency.table import shipped_table_path
from mobile_nas.space import REFERENCE_ARCHS, get_space
from mobile_nas.space.architecture import Architecture
from tests.cost.latency.fakes import FakeClock, FakeNet, distinct_archs

MNASNET = REFERENCE_ARCHS.get("fmnist28_mnasnet").arch


def test_the_reference_is_the_median_of_predicted_over_measured():
    # three probes agree on 2.0 ms; one outlier (a mistimed probe) does not move the median
    assert rebased_reference_ms([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(2.0)
    assert rebased_reference_ms([2.0, 4.0, 6.0, 1.0], [1.0, 2.0, 3.0, 5.0]) == \
        pytest.approx(2.0)
    assert rebased_reference_ms([1.0, 3.0], [1.0, 1.0]) == pytest.approx(2.0)  # mean of two


@pytest.mark.parametrize("predicted, measured", [([], []), ([1.0], [1.0, 2.0]),
                                                 ([1.0], [0.0]), ([-1.0], [1.0])])
def test_bad_probe_data_is_refused(predicted, measured):
    with pytest.raises(MeasureError):
        rebased_reference_ms(predicted, measured)


def test_probes_are_distinct_seeded_and_never_a_reference_or_excluded():
    space = get_space("fmnist28")
    excluded = distinct_archs(space, 30, seed=5)
    probes = probe_archs(space, 12, seed=3, exclude=[a.to_string() for a in excluded])
    texts = [a.to_string() for a in probes]
    assert len(set(texts)) == 12
    assert texts == [a.to_string() for a in probe_archs(space, 12, seed=3, exclude=[
        a.to_string() for a in excluded])]
    assert texts != [a.to_string() for a in probe_archs(space, 12, seed=4)]
    references = {REFERENCE_ARCHS.get(n).arch for n in REFERENCE_ARCHS.names()}
    assert not set(texts) & (references | {a.to_string() for a in excluded})
    with pytest.raises(MeasureError):
        probe_archs(space, 0)


def test_a_reference_slower_than_its_prediction_is_placed_where_it_runs():
    """The machine runs every probe as predicted and the reference 1.25x its prediction: the
    probe puts the reference at 1.25x, so predicted ratios shrink by 1/1.25 to the measured."""
    space = get_space("fmnist28")
    ref = Architecture.from_string(MNASNET, "fmnist28")

    def predict(a):
        return sum(c.channels * c.layers for c in space.stage_configs(a)) / 100

    def time_probes(probes, reference):
        clock = FakeClock()
        return time_against_reference(
            probes, reference, rounds=2, runs_per_round=1, warmup=0, timer=clock,
            session_factory=lambda a: FakeNet(clock, predict(a) * (1.25 if a == ref else 1)))

    probe = probe_reference(ref, predict, time_probes, k=6, seed=1)
    assert probe.reference_ms == pytest.approx(1.25 * predict(ref))
    assert probe.shift == pytest.approx(1 / 1.25)
    assert probe.spread_pct == pytest.approx(0.0, abs=1e-9)
    assert len(probe.probes) == 6 and MNASNET not in probe.probes
    assert ReferenceProbe.from_json(probe.to_json()) == probe


def test_the_check_judges_ratios_against_the_probed_reference(monkeypatch):
    """A fake measurement in which the reference runs 1.2x what the table predicts and every
    other network as predicted: the table's ratios are 20% high, the probed ones exact; the
    probes are timed in the same run and are not scored."""
    path = shipped_table_path("fmnist28")
    table = LatencyTable.load(path)
    pred = LatencyPredictor(table)
    space = get_space("fmnist28")
    ref = Architecture.from_string(MNASNET, "fmnist28")
    archs = [(f"random{i}", a) for i, a in enumerate(distinct_archs(space, 8, seed=11))]
    timed: list[list[Architecture]] = []

    def fake_measure(nets, anchor, *, repeats, **kw):
        timed.append(list(nets))
        ref_ms = 1.2 * pred.predict_ms(ref)
        fractions = tuple(pred.predict_ms(a) / ref_ms for a in nets)
        return AnchoredRun(fractions=fractions, anchor_ms=ref_ms, retest_pct=1.0,
                           repeats=repeats, per_repeat=(fractions,) * repeats,
                           anchor_per_repeat_ms=(ref_ms,) * repeats, rounds=2)

    monkeypatch.setattr(check_module.measure, "measure_archs_anchored", fake_measure)
    plain = check_table(table, archs, repeats=2, rounds=2)
    probed = check_table(table, archs, repeats=2, rounds=2, probes=5)
    assert plain.probe is None and plain.ratio_mape == pytest.approx(20.0)
    assert probed.probe is not None and probed.ratio_mape == pytest.approx(0.0, abs=1e-9)
    assert probed.probe.shift == pytest.approx(1 / 1.2)
    assert len(timed[1]) == len(archs) + 5 and len(probed.rows) == len(archs)
    assert not {a.to_string() for a in timed[1][len(archs):]} & {a.to_string() for _, a in archs}
    assert probed.to_json()["probe"]["reference_ms"] == pytest.approx(1.2 * pred.predict_ms(ref))
