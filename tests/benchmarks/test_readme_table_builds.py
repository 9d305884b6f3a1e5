"""benchmarks/readme_table_builds.py: the per-build tally and the page, from crafted builds."""

from tests.benchmarks import load_script

B = load_script("readme_table_builds")


def _build(i, err_v2, err_mnas):
    measured = {"mobilenet_v2": 10.0, "mnasnet1_0": 20.0}
    predicted = {"mobilenet_v2": 10.0 * (1 + err_v2 / 100),
                 "mnasnet1_0": 20.0 * (1 + err_mnas / 100)}
    return {"build": i, "build_seconds": 60.0, "loadavg_before": 0.1, "loadavg_after": 0.9,
            "predicted_ms": predicted, "measured_ms": measured,
            "error_pct": {"mobilenet_v2": err_v2, "mnasnet1_0": err_mnas},
            "held_out_check": ["held-out check on 2 networks not used in the fit: MAPE 3.00%"]}


def test_a_build_counts_only_when_both_networks_are_within_the_bound():
    builds = [_build(0, 1.0, -4.0), _build(1, 6.0, 2.0), _build(2, -12.0, 3.0),
              _build(3, 10.0, -10.0)]
    t = B.tally(builds)
    assert t["builds_all_within_10"] == 3  # build 2 misses (-12%); exactly 10% counts
    assert t["builds_all_within_5"] == 1  # only build 0
    assert t["max_abs_error_pct"] == 12.0


def test_the_page_lists_every_build_and_the_verdict():
    builds = [_build(0, 1.0, -4.0), _build(1, -12.0, 3.0)]
    r = {"date": "2026-11-30", "cpu_count": 2, "onnxruntime": "1.x", "torch": "2.x",
         "command": "mobile-nas lut build ... --out T.json", "rounds": 10, "builds": builds,
         **B.tally(builds)}
    md = B.markdown(r)
    assert "| 1 | 60 | 0.10 → 0.90 | 8.80 / 10.00 | -12.0% | 20.60 / 20.00 | +3.0% |" in md
    assert "**1 of 2 builds** (target 2 of 2)" in md and "largest error 12.0%" in md
    assert "2 networks not used in the fit: MAPE 3.00%" in md
