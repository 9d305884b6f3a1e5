"""Fault injection: SIGKILL in the middle of lut build, train and export.

A killed ``lut build`` resumes from the last completed key, a killed ``train`` from the last
completed epoch, and a killed ``export`` leaves the target path holding either the old file
or the complete new one. (Search kills are in tests/search/test_runner.py and
test_postgres_workers.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import torch

from mobile_nas.space import get_space
from tests.reliability.record import record

REPO = Path(__file__).resolve().parents[2]
ARCHS = ["ds_k3_n1_c16_relu|mb3_k3_n1_c24_relu|mb3_k3_n1_c40_hswish|mb3_k3_n1_c64_hswish_se",
         "mb6_k5_n2_c24_relu|mb6_k3_n2_c32_relu|ds_k3_n1_c48_relu|mb6_k3_n2_c96_relu"]


def _start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "mobile_nas", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_when(proc: subprocess.Popen, ready, timeout_s: float = 240) -> None:
    deadline = time.time() + timeout_s
    while not ready():
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.time() < deadline, "the process never reached the kill point"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def _logged(proc: subprocess.Popen, text: bytes):
    """A predicate that turns true once ``proc`` has written ``text`` to its stderr."""
    import threading

    seen = threading.Event()

    def pump() -> None:
        for line in proc.stderr:
            if text in line:
                seen.set()

    threading.Thread(target=pump, daemon=True).start()
    return seen.is_set


def _entries(path: Path) -> dict:
    try:
        return json.loads(path.read_text())["entries"]
    except (OSError, json.JSONDecodeError, KeyError):
        return {}


def test_sigkill_during_lut_build_resumes_from_the_last_completed_key(tmp_path):
    space = get_space("fmnist28")
    keys = {k.id for a in ARCHS for k in space.layers(space.decode(a))}
    args = ["lut", "build", "--space", "fmnist28", "--out", "t.json", "--chunk", "3",
            "--rounds", "2", "--runs-per-round", "1", "--warmup", "1", "--calibrate", "0",
            "--no-progress"]
    for a in ARCHS:
        args += ["--arch", a]
    proc = _start(*args, cwd=tmp_path)
    _kill_when(proc, lambda: len(_entries(tmp_path / "t.json")) >= 3)
    before = _entries(tmp_path / "t.json")  # a complete JSON document, never a torn one
    assert 3 <= len(before) < len(keys)
    done = subprocess.run([sys.executable, "-m", "mobile_nas", *args, "--resume"], cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _entries(tmp_path / "t.json")
    record("fault", fault="SIGKILL during lut build", keys_before_kill=len(before),
           keys_total=len(keys), keys_after_resume=len(after),
           finished_keys_kept=all(after.get(k) == v for k, v in before.items()))
    assert set(after) == keys
    assert {k: after[k] for k in before} == before  # finished keys kept, not re-timed


def test_sigkill_during_train_resumes_from_the_last_completed_epoch(tmp_path):
    args = ["train", ARCHS[0], "--space", "fmnist28", "--dataset", "synthetic", "--epochs", "3",
            "--subset", "1500", "--threads", "1", "--no-progress", "--json"]
    state = tmp_path / "killed.pt.state"
    proc = _start(*args, "--out", "killed.pt", cwd=tmp_path)
    _kill_when(proc, state.exists)
    assert not (tmp_path / "killed.pt").exists()
    resumed = subprocess.run([sys.executable, "-m", "mobile_nas", *args, "--out", "killed.pt",
                              "--resume"], cwd=tmp_path, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    resumed_from = json.loads(resumed.stdout)["resumed_from_epoch"]
    assert resumed_from in (1, 2), resumed.stdout
    straight = subprocess.run([sys.executable, "-m", "mobile_nas", *args, "--out", "ref.pt"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert straight.returncode == 0, straight.stderr
    a = torch.load(tmp_path / "killed.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "ref.pt", weights_only=True)["state_dict"]
    record("fault", fault="SIGKILL during train", resumed_from_epoch=resumed_from,
           epochs=3, same_weights_as_uninterrupted=all(
               torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a))
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_sigkill_during_export_leaves_the_old_or_the_complete_new_file(tmp_path):
    from mobile_nas.models import build_model
    from mobile_nas.train.checkpoint import make_checkpoint, save_checkpoint
    from mobile_nas.train.data import load_dataset

    space = get_space("fmnist28")
    arch = space.decode(ARCHS[0])
    ckpt = make_checkpoint(build_model(arch), arch, load_dataset("synthetic"),
                           metrics={"test_accuracy": 0.5}, recipe={})
    save_checkpoint(ckpt, tmp_path / "model.pt")
    target = tmp_path / "model.onnx"
    old = b"the previous export"
    target.write_bytes(old)
    outcomes = []
    for kill in (True, False):  # killed as the export starts, then left to finish
        proc = _start("export", "model.pt", "--out", "model.onnx", cwd=tmp_path)
        if kill:  # "exporting ..." is logged before the graph is built and written
            _kill_when(proc, _logged(proc, b"exporting"))
        else:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()[-2000:]
        data = target.read_bytes()
        if data == old:
            outcomes.append("old")
        else:
            onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
            outcomes.append("new")
    record("fault", fault="SIGKILL during export", outcomes=outcomes, torn_files=0)
    assert outcomes == ["old", "new"], outcomes
