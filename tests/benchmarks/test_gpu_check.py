"""benchmarks/gpu_check.py: every stage runs (tiny, on the CPU) and its page is written."""

import json
import subprocess
import sys

import pytest
import torch

from tests.benchmarks import REPO, load_script


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_says_so_in_one_line(tmp_path, capsys):
    gpu_check = load_script("gpu_check")
    assert gpu_check.main(["--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "no CUDA device here" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_dry_run_on_the_cpu_runs_every_stage(tmp_path):
    out = tmp_path / "gc" / "gpu_check"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"),
                           "--device", "cpu", "--dry-run", "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.with_suffix(".json").read_text())
    stages = doc["stages"]
    assert set(stages) == {"train_fp32", "train_amp", "train_cpu", "supernet_and_scoring",
                           "torchrun_2", "export_cpu", "export_fp32", "export_amp",
                           "export_ddp"}
    assert all(s["status"] == "ok" for s in stages.values()), stages
    assert stages["train_amp"]["result"]["precision"] == "bfloat16"
    ddp = stages["torchrun_2"]["result"]
    assert (ddp["world_size"], ddp["backend"]) == (2, "gloo")
    assert stages["supernet_and_scoring"]["scored_archs"] == 3
    assert doc["parity"]["all_within"] is True
    page = out.with_suffix(".md").read_text()
    assert "dry run" in page and "all within" in page
