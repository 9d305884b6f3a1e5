"""Folder datasets streamed from disk (generated PNGs), and the validation split that fits."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def make_folder(root: Path, *, per_class: int, test_per_class: int, classes: int = 10,
                size: int = 20) -> Path:
    """ImageFolder layout of small RGB PNGs: each class a bright square at its own place."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in range(classes):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(n):
                img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
                y, x = (c // 5) * (size // 2), (c % 5) * (size // 5)
                img[y:y + size // 2, x:x + size // 5] = 230
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def folder600(tmp_path_factory) -> Path:
    """The issue's case: 600 training images in 10 classes (and 100 test images)."""
    return make_folder(tmp_path_factory.mktemp("folder"), per_class=60, test_per_class=10)


def test_default_validation_split_fits_the_data(folder600):
    from mobile_nas.train.data import load_dataset, resolve_val_size
    from mobile_nas.train.folder import FolderImageSet

    d = load_dataset(f"folder:{folder600}", image_shape=(1, 28, 28))
    assert (len(d.train), len(d.val), len(d.test)) == (540, 60, 100)  # 10% held out
    assert isinstance(d.train, FolderImageSet) and d.streamed
    assert d.input_shape == (1, 28, 28)
    assert set(d.train.samples).isdisjoint(d.val.samples)
    x = d.val.subset(4).decode().images
    assert tuple(x.shape) == (4, 1, 28, 28) and str(x.dtype) == "torch.uint8"
    assert resolve_val_size(None, 60000) == 5000  # Fashion-MNIST's split is unchanged
    assert resolve_val_size(0.25, 600) == 150 and resolve_val_size(7, 600) == 7


def test_loader_splits_each_epoch_over_processes(folder600):
    """Two processes' DistributedSampler shares of an epoch are one process's epoch; the
    order changes with the epoch."""
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.distributed import Distributed

    train = load_dataset(f"folder:{folder600}", image_shape=(1, 28, 28)).train.subset(50)

    def order(rank: int, world: int, epoch: int) -> list[int]:
        loader = train.loader(10 // world, shuffle=True, augment=False, seed=3,
                              distributed=Distributed(rank=rank, world_size=world), workers=0)
        loader.sampler.set_epoch(epoch)
        return list(loader.sampler)

    one = order(0, 1, 0)
    halves = [order(r, 2, 0) for r in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(one) == list(range(50))
    for step in range(5):  # step k of two processes = step k of one, as sets
        both = halves[0][5 * step:5 * step + 5] + halves[1][5 * step:5 * step + 5]
        assert sorted(both) == sorted(one[10 * step:10 * step + 10])
    assert order(0, 1, 1) != one


def test_train_on_a_600_image_folder(run_cli, folder600, tmp_path):
    out = tmp_path / "m.pt"
    code, stdout, err = run_cli("train", "fmnist28_mnasnet", "--dataset",
                                f"folder:{folder600}", "--epochs", "1", "--batch-size", "64",
                                "--workers", "2", "--out", str(out), "--no-progress", "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert (doc["train_images"], doc["val_images"]) == (540, 60)
    assert doc["optimizer_steps"] == 9 and doc["world_size"] == 1
    from mobile_nas.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(out)
    assert ckpt.dataset["input_shape"] == [1, 28, 28]  # the space's input, not the files'
    assert ckpt.metrics["test_images"] == 100


@pytest.mark.parametrize("value,message", [
    ("0", "expected a count N >= 1 or a fraction 0 < F < 1"),
    ("1.5", "expected a count N >= 1 or a fraction 0 < F < 1"),
    ("ten", "expected a count N >= 1 or a fraction 0 < F < 1"),
    ("600", "validation size 600 must be in 1..599"),
])
def test_bad_val_size_is_one_line_and_exit_2(run_cli, folder600, tmp_path, value, message):
    code, _, err = run_cli("train", "fmnist28_mnasnet", "--dataset", f"folder:{folder600}",
                           "--epochs", "1", "--val-size", value, "--out",
                           str(tmp_path / "m.pt"), "--no-progress")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("command", [["search", "--space", "fmnist28"], ["demo"]])
def test_val_size_is_shared_by_search_and_demo(run_cli, command):
    code, _, err = run_cli(*command, "--val-size", "-3")
    assert code == 2 and "--val-size: expected a count N >= 1" in err


MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys
    from pathlib import Path
    from mobile_nas.train.folder import read_folder

    train, _, _ = read_folder(Path(sys.argv[1]), (3, 224, 224))  # no statistics decoded
    loader = train.loader(16, shuffle=True, augment=True, workers=0)
    peaks, seen = [], 0
    for epoch in range(2):
        for x, y in loader.epoch(epoch):
            seen += len(y)
            peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB
    print(json.dumps({"peaks_kib": peaks, "seen": seen,
                      "dataset_bytes": len(train) * 3 * 224 * 224}))
""")


def test_loader_memory_stays_flat_over_a_dataset_larger_than_its_batches(tmp_path):
    """400 small PNGs decode to 60 MB at 224x224; streaming them twice in batches of 16
    (0.6 MB each) must not grow the process's peak memory by more than a fifth of that:
    nothing is cached, nothing is read into memory up front."""
    root = make_folder(tmp_path / "big", per_class=40, test_per_class=1, size=16)
    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(root)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-2000:]
    doc = json.loads(probe.stdout)
    assert doc["seen"] == 2 * 400
    growth = (doc["peaks_kib"][-1] - doc["peaks_kib"][2]) * 1024  # after 3 warm-up batches
    assert growth < doc["dataset_bytes"] / 5, (growth, doc["dataset_bytes"])


def test_supernet_trains_and_scores_on_a_folder(folder600, tmp_path):
    """Supernet steps stream their batches from the files (the in-memory path's draw of
    images per step); scoring decodes its small calibration and validation subsets."""
    import torch

    from mobile_nas.models.supernet import build_supernet
    from mobile_nas.search.supernet_evaluator import SupernetEvaluator
    from mobile_nas.space import get_space
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.supernet import SupernetTrainConfig, load_supernet, train_supernet

    space = get_space("fmnist28")
    data = load_dataset(f"folder:{folder600}", image_shape=tuple(space.input_shape))
    torch.manual_seed(0)
    config = SupernetTrainConfig(steps=3, batch_size=16, warmup_steps=1, augment=True)
    result = train_supernet(build_supernet(space), data, config, progress=False,
                            checkpoint_path=tmp_path / "sn.pt", device="cpu", workers=0)
    assert len(result.losses) == 3 and all(0 < x < 10 for x in result.losses)
    evaluator = SupernetEvaluator(supernet=load_supernet(tmp_path / "sn.pt", space),
                                  dataset=data, calib_batches=1, calib_batch_size=16,
                                  val_images=32, device="cpu")
    assert 0.0 <= evaluator.evaluate(space.sample(0)) <= 1.0 and evaluator.n_val == 32
