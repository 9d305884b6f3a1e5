"""benchmarks/latency_build_ensemble.py: its committed page recomputed from the committed
check rows and tables, and its refusal of a table without a relative network model."""

from pathlib import Path

import pytest

from tests.benchmarks import load_script

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
TABLES = [f"{name}={RESULTS / folder / 'fmnist28_table.json'}" for name, folder in (
    ("v1", "latency_prediction_intel"), ("v2", "latency_prediction_intel_v2"),
    ("v3", "latency_prediction_intel_v3"))]


def _rows(md: str) -> list[str]:
    return [r for r in md.splitlines() if r.startswith("|")]


def test_the_page_is_recomputed_from_the_committed_data(tmp_path):
    mod = load_script("latency_build_ensemble")
    out = tmp_path / "ensemble"
    args = [a for c in ("", "_v2", "_v3")
            for a in ("--check", str(RESULTS / f"latency_prediction_intel{c}.json"))]
    args += [a for t in TABLES for a in ("--table", t)]
    assert mod.main([*args, "--out", str(out)]) == 0
    rows = _rows(out.with_suffix(".md").read_text())
    committed = _rows((RESULTS / "latency_build_ensemble_intel.md").read_text())
    assert rows == committed and len(rows) == 2 + 14


def test_a_table_without_a_relative_network_model_is_refused():
    mod = load_script("latency_build_ensemble")
    with pytest.raises(SystemExit, match="relative network model"):
        table = mod.LatencyTable.load(RESULTS / "latency_prediction_intel" / "fmnist28_table.json")
        mod.calibration_set(table.with_calibration(None))
