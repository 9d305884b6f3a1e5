"""benchmarks/latency_features.py recomputes its committed page from the committed data."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "benchmarks" / "results" / "demo_runs" / "2026-12-07-intel"


def _module():
    spec = importlib.util.spec_from_file_location("latency_features",
                                                  ROOT / "benchmarks" / "latency_features.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_page_is_recomputed_from_the_committed_data(tmp_path):
    mod = _module()
    out = tmp_path / "latency_features"
    assert mod.main(["--table", str(DATA / "fmnist28_table_built_here.json"), "--networks",
                     str(DATA / "networks240_fractions.json"), "--out", str(out)]) == 0
    rows = out.with_suffix(".md").read_text().splitlines()[6:]
    committed = (DATA / "latency_features.md").read_text().splitlines()[6:]
    assert rows == committed  # the table rows (the header names other paths)
    assert len(rows) == 9 and "| 160 | fine | 93 |" in rows[7]
