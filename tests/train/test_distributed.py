"""Training under torchrun on this CPU (gloo): 2 processes take the steps 1 process takes.

Tolerance of the loss comparisons: batch norm normalises each process's half of the batch
(no SyncBatchNorm on CPUs) and dropout draws its masks per half, so the per-step losses of 1
and 2 processes differ by that alone; at 16 images per process by up to 0.03 in the runs that
set it (uniform single path), so the tests allow 0.08 (losses start at ln 10 = 2.30; the
sandwich rule's largest path moved by up to 0.10 and is not held to it). With batch norm and
dropout frozen (tests/train/ddp_worker.py) 1 and 2 processes compute the same thing up to
summation order: losses and weights agree within 1e-4, which checks the steps, the images of
each step and the sampled paths.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ddp_worker.py")
LOSS_TOLERANCE = 0.08
ARCH = "fmnist28_mnasnet"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    return env


def torchrun(*args: str, nproc: int = 2, **kw) -> subprocess.Popen:
    """``torchrun --standalone`` (a free port of its own choosing) with ``nproc`` processes."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", str(nproc), *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


# -- pieces ----------------------------------------------------------------------------------
def test_shard_is_distributed_samplers_rule():
    from torch.utils.data import DistributedSampler

    from mobile_nas.train.distributed import Distributed, shard

    batch = torch.arange(5) * 10
    parts = [shard(Distributed(rank=r, world_size=2), batch)[0].tolist() for r in (0, 1)]
    for r in (0, 1):  # DistributedSampler pads with the first items, rank r takes r, r+N...
        ds = DistributedSampler(range(5), num_replicas=2, rank=r, shuffle=False)
        assert parts[r] == [10 * i for i in ds]
    assert sorted(parts[0] + parts[1])[1:] == sorted(batch.tolist())  # all, one padded
    assert shard(None, batch)[0] is batch  # one process: untouched


def test_without_torchrun_one_process_and_no_group(monkeypatch):
    import torch.distributed as dist

    from mobile_nas.train.distributed import distributed

    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    with distributed("cpu") as ctx:
        assert (ctx.world_size, ctx.backend, ctx.enabled, ctx.is_main) == (1, "none", False,
                                                                          True)
        assert not dist.is_initialized()


def test_backend_follows_the_device():
    from mobile_nas.train.distributed import Distributed, DistributedError, choose_backend

    assert choose_backend(torch.device("cpu"), local_world_size=2, shared_gpu=False) == "gloo"
    with pytest.raises(DistributedError, match="CPUs .gloo. or CUDA"):
        choose_backend(torch.device("mps"), local_world_size=2, shared_gpu=False)
    with pytest.raises(DistributedError, match="batch size 127 does not split over 2"):
        Distributed(world_size=2).per_process_batch(127)


# -- supernet: 2 processes against 1 (default run) -------------------------------------------
#: 1 and 2 processes with batch norm and dropout frozen: the same computation up to the order
#: of floating-point sums
EXACT = 1e-4


def _worker_here(out: Path, *args: str) -> None:
    """The one-process run, in this process (spares a start-up of torch)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        module.main(out, *args)
    finally:
        torch.set_num_threads(threads)


def _ranks(folder: Path, mode: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob(f"{mode}_rank*.json"))]


def _compare_supernets(tmp_path: Path, *args: str) -> tuple[Path, Path]:
    """One process here and two under torchrun; checks what holds for every sampling."""
    from mobile_nas.space import get_space
    from mobile_nas.train.supernet import load_supernet_file

    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    proc = torchrun(str(WORKER), str(two), *args)
    _worker_here(one, *args)
    code, _, err = finish(proc)
    assert code == 0, err[-3000:]
    for mode in ("batchnorm", "frozen"):
        [single] = _ranks(one, mode)
        ranks = _ranks(two, mode)
        assert len(ranks) == 2
        # the same weights on both ranks (built differently: rank 0's were broadcast)
        assert ranks[0]["digest"] == ranks[1]["digest"]
        assert ranks[0]["losses"] == ranks[1]["losses"]  # reduced over the ranks
        assert len(ranks[0]["losses"]) == len(single["losses"]) == 6  # the same steps
        assert (ranks[0]["world_size"], ranks[0]["backend"]) == (2, "gloo")
    # frozen statistics: the same images, paths and steps give the same weights
    frozen = [load_supernet_file(d / "frozen.pt", get_space("fmnist28"))["state_dict"]
              for d in (one, two)]
    for k, v in frozen[0].items():
        assert torch.allclose(v.float(), frozen[1][k].float(), atol=EXACT), k
    diffs = [abs(a - b) for a, b in zip(_ranks(one, "frozen")[0]["losses"],
                                        _ranks(two, "frozen")[0]["losses"], strict=True)]
    assert max(diffs) <= EXACT, diffs
    return one, two


def test_two_processes_take_the_steps_of_one_supernet_and_train(tmp_path):
    from mobile_nas.space import get_space
    from mobile_nas.train.supernet import load_supernet_file

    one, two = _compare_supernets(tmp_path)
    # with batch norm on each process's half batch: losses within the stated tolerance
    diffs = [abs(a - b) for a, b in zip(_ranks(one, "batchnorm")[0]["losses"],
                                        _ranks(two, "batchnorm")[0]["losses"], strict=True)]
    assert max(diffs) <= LOSS_TOLERANCE, diffs
    # rank 0 alone wrote the files, atomically (no temporary file left)
    assert sorted(p.name for p in two.iterdir()) == [
        "batchnorm.pt", "batchnorm_rank0.json", "batchnorm_rank1.json", "frozen.pt",
        "frozen_rank0.json", "frozen_rank1.json", "train.state", "train_rank0.json",
        "train_rank1.json"]
    # stand-alone training under DistributedDataParallel: the one-process run's steps
    from mobile_nas.train.trainer import TRAINING_STATE_FILE

    [single], ranks = _ranks(one, "train"), _ranks(two, "train")
    assert ranks[0]["digest"] == ranks[1]["digest"] and ranks[0]["world_size"] == 2
    assert ranks[0]["steps"] == single["steps"] == 2 * 3  # 96 images, global batch 32
    assert max(abs(a - b) for a, b in zip(ranks[0]["losses"], single["losses"],
                                          strict=True)) <= EXACT
    assert ranks[0]["val_accuracy"] == ranks[1]["val_accuracy"] == single["val_accuracy"]
    weights = [TRAINING_STATE_FILE.load(d / "train.state")["model"] for d in (one, two)]
    for k, v in weights[0].items():
        assert torch.allclose(v.float(), weights[1][k].float(), atol=EXACT), k
    state = load_supernet_file(two / "batchnorm.pt", get_space("fmnist28"))
    assert state["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch": 32,
                                    "per_process_batch": 16}
    assert state["steps_done"] == 6


@pytest.mark.slow
def test_sandwich_supernet_on_two_processes(tmp_path):
    """The sandwich rule (largest, smallest and a random path per step, one gradient
    all-reduce after the three): exact with frozen statistics."""
    _compare_supernets(tmp_path, "sandwich")


# -- mobile-nas train: 2 processes against 1, and a kill of one rank (slow) ------------------
TRAIN = ["-m", "mobile_nas", "train", ARCH, "--dataset", "synthetic", "--subset", "1024",
         "--batch-size", "64", "--threads", "1", "--no-progress", "--json"]


def _train_one(out: Path, epochs: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *TRAIN, "--epochs", str(epochs), "--out", str(out)],
                          cwd=ROOT, env=_env(), capture_output=True, text=True)


def _rank_pid(parent: int, rank: int) -> int | None:
    """The worker of torchrun process ``parent`` whose RANK is ``rank`` (from /proc)."""
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            env = (p / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and f"RANK={rank}".encode() in env:
            return int(p.name)
    return None


@pytest.mark.slow
def test_train_on_two_processes_matches_one_and_resumes_after_a_kill(tmp_path):
    from mobile_nas.train.checkpoint import load_checkpoint

    epochs = 3
    single = _train_one(tmp_path / "one.pt", epochs)
    assert single.returncode == 0, single.stderr[-3000:]
    code, out, err = finish(torchrun(*TRAIN, "--epochs", str(epochs), "--out",
                                     str(tmp_path / "two.pt")))
    assert code == 0, err[-3000:]
    a, b = json.loads(single.stdout), json.loads(out)
    assert (b["world_size"], b["backend"], b["global_batch"]) == (2, "gloo", 64)
    assert a["optimizer_steps"] == b["optimizer_steps"] == epochs * 1024 // 64
    one_ckpt, two_ckpt = load_checkpoint(tmp_path / "one.pt"), load_checkpoint(tmp_path /
                                                                               "two.pt")
    la = [h["train_loss"] for h in one_ckpt.metrics["history"]]
    lb = [h["train_loss"] for h in two_ckpt.metrics["history"]]
    assert max(abs(x - y) for x, y in zip(la, lb, strict=True)) <= LOSS_TOLERANCE, (la, lb)
    assert two_ckpt.metrics["world_size"] == 2 and two_ckpt.metrics["backend"] == "gloo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.pt", "two.pt"]

    # kill rank 1 once rank 0 has written the first epoch's state; restart the job
    killed = tmp_path / "killed"
    killed.mkdir()
    out_pt = killed / "m.pt"
    args = [*TRAIN, "--epochs", str(epochs), "--out", str(out_pt), "--resume"]
    proc = torchrun(*args)
    state = killed / "m.pt.state"
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = _rank_pid(proc.pid, 1)
    assert victim is not None and proc.poll() is None, "the job ended before the kill"
    os.kill(victim, signal.SIGKILL)
    code, _, err = finish(proc)
    assert code != 0 and not out_pt.exists()
    code, out, err = finish(torchrun(*args))
    assert code == 0, err[-3000:]
    resumed = json.loads(out)
    assert resumed["resumed_from_epoch"] >= 1 and resumed["optimizer_steps"] == \
        b["optimizer_steps"]
    final = load_checkpoint(out_pt).state_dict
    for k, v in two_ckpt.state_dict.items():  # the uninterrupted 2-process run's weights
        assert torch.allclose(v.float(), final[k].float(), atol=1e-6), k
    assert sorted(p.name for p in killed.iterdir() if not p.name.startswith(".")) == ["m.pt"]


# -- the tour: its torchrun commands run as written (single node) ---------------------------
def _tour_torchrun_commands() -> list[str]:
    text = (ROOT / "mobile_nas" / "TOUR.md").read_text()
    return [line.strip() for line in text.splitlines()
            if re.match(r"\s*torchrun --standalone", line)]


@pytest.mark.slow
def test_tour_single_node_torchrun_train(tmp_path):
    commands = [c for c in _tour_torchrun_commands() if " train " in c]
    assert commands, "mobile_nas/TOUR.md has no single-node torchrun train command"
    cmd = commands[0].split()
    assert cmd[:4] == ["torchrun", "--standalone", "--nproc_per_node", "2"]
    rest = cmd[4:]
    out = rest[rest.index("--out") + 1]
    proc = torchrun(*rest[:rest.index("--out")], "--out", str(tmp_path / out),
                    "--no-progress", "--json", nproc=2)
    code, stdout, err = finish(proc, timeout=600)
    assert code == 0, err[-3000:]
    doc = json.loads(stdout)
    assert doc["world_size"] == 2 and (tmp_path / out).is_file()


# -- search --train-supernet: every process trains the supernet, rank 0 searches (slow) -----
SEARCH_SCRIPT = """
import sys
from mobile_nas.cli import main
from mobile_nas.search.presets import Preset, register_preset
from mobile_nas.train.supernet import SupernetTrainConfig

register_preset(Preset("tiny", SupernetTrainConfig(steps=4, batch_size=16, warmup_steps=1),
                       calib_batches=1, calib_batch_size=16, val_images=64))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_search_trains_its_supernet_on_two_processes(tmp_path):
    from mobile_nas.space import get_space
    from mobile_nas.train.supernet import load_supernet_file
    from tests.search.conftest import synthetic_table_json

    table = tmp_path / "table.json"
    table.write_text(json.dumps(synthetic_table_json(get_space("fmnist28"))))
    script = tmp_path / "search.py"
    script.write_text(SEARCH_SCRIPT)
    common = ["search", "--space", "fmnist28", "--dataset", "synthetic", "--strategy",
              "random", "--latency-target-ms", "1000", "--table", str(table), "--trials",
              "2", "--verify-top", "0", "--preset", "tiny", "--no-progress", "--json"]
    code, out, err = finish(torchrun(str(script), *common, "--train-supernet", "--out",
                                     str(tmp_path / "run")))
    assert code == 0, err[-3000:]
    doc = json.loads(out)  # rank 0 alone printed
    assert doc["trials"] == 2 and "2 processes, gloo" in doc["evaluator"]["supernet"]
    state = load_supernet_file(tmp_path / "run" / "supernet.pt", get_space("fmnist28"))
    assert state["distributed"]["world_size"] == 2 and state["steps_done"] == 4
    # without --train-supernet the job refuses (one line from each process, exit != 0)
    code, _, err = finish(torchrun(str(script), *common, "--out", str(tmp_path / "r2")))
    assert code != 0 and "pass --train-supernet" in err
