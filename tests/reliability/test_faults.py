"""Fault injection: SIGKILL at a known point of lut build, train and export.

Each child runs under ``tests/reliability/_kill_at_rename.py``, which SIGKILLs it exactly
before or after the N-th atomic rename onto a named result file, so every outcome is
deterministic (no sleeps, no polling, no race with the child's progress):

* killed *before* a rename, the target still holds the previous complete file (and the
  complete new one sits unrenamed in a hidden temporary file beside it);
* killed *after* it, the target holds the complete new file;
* a killed ``lut build`` resumes from the last saved chunk of keys and a killed ``train`` from
  the last saved epoch, ending where an uninterrupted run ends.

(Search kills are in tests/search/test_runner.py and test_postgres_workers.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch

from mobile_nas.space import get_space
from tests.reliability.record import record

REPO = Path(__file__).resolve().parents[2]
ARCHS = ["ds_k3_n1_c16_relu|mb3_k3_n1_c24_relu|mb3_k3_n1_c40_hswish|mb3_k3_n1_c64_hswish_se",
         "mb6_k5_n2_c24_relu|mb6_k3_n2_c32_relu|ds_k3_n1_c48_relu|mb6_k3_n2_c96_relu"]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _killed(name: str, nth: int, when: str, *args: str, cwd: Path) -> None:
    """Runs ``mobile-nas ARGS`` in ``cwd`` until it SIGKILLs itself ``when`` ("before" or
    "after") its ``nth`` rename onto a file called ``name``; fails if it ends otherwise."""
    proc = subprocess.run([sys.executable, "-m", "tests.reliability._kill_at_rename", name,
                           str(nth), when, *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr[-2000:])


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "mobile_nas", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _temps(folder: Path, name: str) -> list[Path]:
    """The temporary files ``mobile_nas.atomic`` left beside ``name`` (``.NAME.*.tmp``)."""
    return sorted(folder.glob(f".{name}.*.tmp"))


# -- lut build ------------------------------------------------------------------------------
LUT_ARGS = ["lut", "build", "--space", "fmnist28", "--out", "t.json", "--chunk", "3",
            "--rounds", "2", "--runs-per-round", "1", "--warmup", "1", "--calibrate", "0",
            "--no-progress", *[x for a in ARCHS for x in ("--arch", a)]]


@pytest.mark.parametrize("when, nth", [("after", 1), ("before", 2)],
                         ids=["after the first chunk's rename", "before the second's"])
def test_sigkill_during_lut_build_resumes_from_the_last_saved_chunk(tmp_path, when, nth):
    space = get_space("fmnist28")
    keys = {k.id for a in ARCHS for k in space.layers(space.decode(a))}
    assert len(keys) > 6  # more than two chunks of 3
    _killed("t.json", nth, when, *LUT_ARGS, cwd=tmp_path)
    before = json.loads((tmp_path / "t.json").read_text())["entries"]
    assert len(before) == 3  # exactly the first chunk: complete JSON, never a torn file
    if when == "before":  # the second chunk reached its temporary file, not the table
        (temp,) = _temps(tmp_path, "t.json")
        assert len(json.loads(temp.read_text())["entries"]) == 6
    _run(*LUT_ARGS, "--resume", cwd=tmp_path)
    after = json.loads((tmp_path / "t.json").read_text())["entries"]
    record("fault", fault=f"SIGKILL during lut build ({when} rename {nth})",
           keys_before_kill=len(before), keys_total=len(keys), keys_after_resume=len(after),
           finished_keys_kept=all(after.get(k) == v for k, v in before.items()))
    assert set(after) == keys
    assert {k: after[k] for k in before} == before  # finished keys kept, not re-timed


# -- train ----------------------------------------------------------------------------------
TRAIN_ARGS = ["train", ARCHS[0], "--space", "fmnist28", "--dataset", "synthetic", "--epochs",
              "3", "--subset", "600", "--threads", "1", "--no-progress", "--json"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("straight")
    _run(*TRAIN_ARGS, "--out", "ref.pt", cwd=folder)
    return torch.load(folder / "ref.pt", weights_only=True)["state_dict"]


@pytest.mark.parametrize("when, nth, resumed_from", [("after", 2, 2), ("before", 2, 1)],
                         ids=["after epoch 2's state rename", "before it"])
def test_sigkill_during_train_resumes_from_the_last_saved_epoch(tmp_path, uninterrupted, when,
                                                                nth, resumed_from):
    _killed("killed.pt.state", nth, when, *TRAIN_ARGS, "--out", "killed.pt", cwd=tmp_path)
    assert not (tmp_path / "killed.pt").exists()
    resumed = _run(*TRAIN_ARGS, "--out", "killed.pt", "--resume", cwd=tmp_path)
    assert json.loads(resumed.stdout)["resumed_from_epoch"] == resumed_from
    a = torch.load(tmp_path / "killed.pt", weights_only=True)["state_dict"]
    b = uninterrupted
    same = a.keys() == b.keys() and all(
        torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    record("fault", fault=f"SIGKILL during train ({when} state rename {nth})",
           resumed_from_epoch=resumed_from, epochs=3, same_weights_as_uninterrupted=same)
    assert same


# -- export ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    from mobile_nas.models import build_model
    from mobile_nas.train.checkpoint import make_checkpoint, save_checkpoint
    from mobile_nas.train.data import load_dataset

    arch = get_space("fmnist28").decode(ARCHS[0])
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    save_checkpoint(make_checkpoint(build_model(arch), arch, load_dataset("synthetic"),
                                    metrics={"test_accuracy": 0.5}, recipe={}), path)
    return path


OLD = b"the previous export"


def test_sigkill_before_the_exports_rename_leaves_the_old_file(tmp_path, checkpoint):
    (tmp_path / "model.onnx").write_bytes(OLD)
    _killed("model.onnx", 1, "before", "export", str(checkpoint), "--out", "model.onnx",
            "--runs", "0", cwd=tmp_path)
    assert (tmp_path / "model.onnx").read_bytes() == OLD
    (temp,) = _temps(tmp_path, "model.onnx")  # the new graph was written, never renamed
    onnx.checker.check_model(onnx.load(str(temp)), full_check=True)
    record("fault", fault="SIGKILL during export (before rename)", outcome="old", torn_files=0)


def test_sigkill_after_the_exports_rename_leaves_the_complete_new_file(tmp_path, checkpoint):
    (tmp_path / "model.onnx").write_bytes(OLD)
    _killed("model.onnx", 1, "after", "export", str(checkpoint), "--out", "model.onnx",
            "--runs", "0", cwd=tmp_path)
    model = onnx.load(str(tmp_path / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert {p.key: p.value for p in model.metadata_props}["arch"] == ARCHS[0]
    assert not _temps(tmp_path, "model.onnx")
    record("fault", fault="SIGKILL during export (after rename)", outcome="new", torn_files=0)
