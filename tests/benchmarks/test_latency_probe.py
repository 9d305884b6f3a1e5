"""benchmarks/latency_probe.py: its committed page recomputed from the committed check rows,
search records and tables it lists."""

import json
from pathlib import Path

from tests.benchmarks import load_script

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def _rows(md: str) -> list[str]:
    return [r for r in md.splitlines() if r.startswith("|")]


def test_the_page_is_recomputed_from_the_committed_data(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    mod = load_script("latency_probe")
    committed = json.loads((RESULTS / "latency_probe_intel.json").read_text())
    args = [a for c in committed["checks"] for a in ("--check", c)]
    args += [a for c in committed["band_checks"] for a in ("--band-check", c)]
    args += ["--finalists", *committed["finalist_files"]]
    args += [a for name, t in committed["finalists"]["tables"].items()
             for a in ("--table", f"{name}={t['path']}")]
    args += ["--probes", *map(str, committed["probes"]), "--draws", str(committed["draws"]),
             "--seed", str(committed["seed"]), "--out", str(tmp_path / "probe")]
    assert mod.main(args) == 0
    page = (tmp_path / "probe.md").read_text()
    assert _rows(page) == _rows((RESULTS / "latency_probe_intel.md").read_text())
    assert len(_rows(page)) == 2 + 15 + 2 + 15 + 2 + 6 + 2 + 3


def test_a_bad_table_argument_is_one_error_line(capsys):
    mod = load_script("latency_probe")
    check = str(RESULTS / "latency_prediction_intel_v5.json")
    assert mod.main(["--check", check, "--table", "no-equals-sign", "--out", "x"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
