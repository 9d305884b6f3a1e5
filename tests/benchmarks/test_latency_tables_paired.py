"""benchmarks/latency_tables_paired.py: its error split, and its committed page recomputed
from the committed check rows and tables."""

from pathlib import Path

import pytest

from tests.benchmarks import load_script

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def _module():
    return load_script("latency_tables_paired")


def test_score_splits_the_error_into_bias_and_scatter():
    s = _module().score([1.09, 0.96, 1.12, 1.03], [1.0, 1.0, 1.0, 1.0])
    # errors +9, -4, +12, +3: bias +5, around it 4, 9, 7, 2
    assert s["bias"] == pytest.approx(5.0) and s["scatter"] == pytest.approx(5.5)
    assert s["mape"] == pytest.approx(7.0)
    assert (s["within_10"], s["within_5"]) == (0.75, 0.5)


def test_the_page_is_recomputed_from_the_committed_data(tmp_path):
    mod = _module()
    out = tmp_path / "paired"
    assert mod.main([
        "--check", str(RESULTS / "latency_prediction_intel.json"),
        "--check", str(RESULTS / "latency_prediction_intel_v2.json"),
        "--check", str(RESULTS / "latency_prediction_intel_v3.json"),
        "--table", f"v1={RESULTS / 'latency_prediction_intel' / 'fmnist28_table.json'}",
        "--table", f"v2={RESULTS / 'latency_prediction_intel_v2' / 'fmnist28_table.json'}",
        "--table", f"v3={RESULTS / 'latency_prediction_intel_v3' / 'fmnist28_table.json'}",
        "--table", f"shipped={ROOT / 'latency_tables' / 'fmnist28.json'}",
        "--out", str(out)]) == 0
    rows = [r for r in out.with_suffix(".md").read_text().splitlines() if r.startswith("| lat")]
    committed = [r for r in (RESULTS / "latency_tables_paired_intel.md").read_text()
                 .splitlines() if r.startswith("| lat")]
    assert rows == committed and len(rows) == 9
