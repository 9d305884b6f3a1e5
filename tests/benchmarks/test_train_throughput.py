"""benchmarks/train_throughput.py: the committed results still read and render; the
processes and loader parts run (tiny) and add their rows beside the kept ones."""

import json
import shutil

import pytest

from tests.benchmarks import REPO, load_script

COMMITTED = REPO / "benchmarks" / "results" / "train_throughput.json"


def test_committed_results_read_and_render():
    tt = load_script("train_throughput")
    doc = tt.read_results(COMMITTED)
    assert doc["schema_version"] == 2 and "devices" in doc["parts"]
    page = tt.render(doc)
    first = doc["parts"]["devices"]["rows"][0]
    assert f"| {first['device']} | {first['threads']} | {first['precision']} |" in page


@pytest.mark.slow
def test_processes_and_loader_parts_add_rows(tmp_path):
    tt = load_script("train_throughput")
    shutil.copy(COMMITTED, tmp_path / "tt.json")
    before = tt.read_results(tmp_path / "tt.json")["parts"]["devices"]
    assert tt.main(["--repeats", "1", "--steps", "1", "--parts", "processes", "loader",
                    "--out", str(tmp_path / "tt")]) == 0
    doc = json.loads((tmp_path / "tt.json").read_text())
    assert doc["parts"]["devices"] == before  # kept as it was
    procs = {(r["processes"], r["threads_per_process"]): r["backend"]
             for r in doc["parts"]["processes"]["rows"]}
    assert procs == {(1, 1): "none", (1, 2): "none", (2, 1): "gloo"}
    loader = {(r["input"], r["workers"], r["kind"]) for r in doc["parts"]["loader"]["rows"]}
    assert loader == {("1x28x28", 0, "loader"), ("1x28x28", 2, "loader"),
                      ("1x28x28", 0, "train"), ("1x28x28", 2, "train"),
                      ("3x224x224", 0, "loader"), ("3x224x224", 2, "loader")}
    page = (tmp_path / "tt.md").read_text()
    assert "No speed-up is expected" in page and "## Folder dataset" in page
