"""Training and scoring throughput (images/s) on fmnist28, per device and precision.

Measures, for the space's smallest network, the hand-designed MnasNet-style reference (a
median-sized network) and the largest network:

* stand-alone training steps (``train_model``'s step: forward, loss, backward, SGD),
* supernet training steps on that network's path through the supernet,
* supernet scoring (forward passes in eval mode, as the evaluator scores a path),

on the CPU with 1 and 2 torch threads and, when a GPU is present, on it with and without mixed
precision (part ``devices``). Part ``processes``: stand-alone training of the median network
under torchrun with 1 and 2 processes (DistributedDataParallel, gloo) at the same global batch,
against one process with 1 and 2 threads (images/s and step time). Part ``loader``: a folder
dataset (Fashion-MNIST training images written as PNGs) streamed through the DataLoader with 0
and 2 workers, alone at 28x28 and 224x224 and feeding the median network's training at 28x28.
Repeats are interleaved across configurations and the median is reported; the share of each
step spent making the batch (indexing, augmentation, normalisation: the data path) is
reported beside it. Run it alone: on a busy machine it measures the load (the load average
is recorded before and after each part). ``--parts`` measures some parts and keeps the
others' last results.

    .venv/bin/python benchmarks/train_throughput.py [--repeats 5] [--steps 8]
        [--parts devices processes loader]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from _shared import machine_facts, result_path
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.device import autocast, choose_precision, describe_device, grad_scaler
from mobile_nas.models import build_model
from mobile_nas.models.supernet import MobileSupernet
from mobile_nas.search.costs import macs_params
from mobile_nas.space import REFERENCE_ARCHS, get_space
from mobile_nas.train.data import batches, load_dataset

PARTS = ("devices", "processes", "loader")
#: (processes, torch threads per process) of part ``processes``
PROCESS_CONFIGS = ((1, 1), (1, 2), (2, 1))
#: (image shape, DataLoader workers, kind) of part ``loader``
LOADER_CONFIGS = tuple((shape, w, kind) for shape, kinds in (((1, 28, 28), ("loader", "train")),
                                                             ((3, 224, 224), ("loader",)))
                       for kind in kinds for w in (0, 2))
LOADER_IMAGES = 2560  # Fashion-MNIST training images written as PNGs for part ``loader``


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(kind: str, arch, supernet, data, device, amp: bool, steps: int,
            batch_size: int) -> tuple[float, float]:
    """(images per second, share of the time spent making batches) of ``steps`` steps."""
    precision = choose_precision(device, amp)
    if kind == "supernet-score":
        model = supernet
        model.eval()
    elif kind == "supernet-train":
        model = supernet
        model.train()
    else:
        torch.manual_seed(0)
        model = build_model(arch).to(device).train()
    model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scaler = grad_scaler(device, precision)
    rng = np.random.default_rng(0)
    it = batches(data, batch_size, mean=(0.286,), std=(0.353,), shuffle=True,
                 augment=kind != "supernet-score", rng=rng)
    data_s = total_s = 0.0
    for step in range(steps + 1):  # the first step warms up and is not counted
        _sync(device)
        t0 = time.perf_counter()
        x, y = next(it)
        x = x.contiguous(memory_format=torch.channels_last)
        _sync(device)
        t1 = time.perf_counter()
        forward_kw = {"arch": arch} if kind.startswith("supernet") else {}
        if kind == "supernet-score":
            with torch.no_grad(), autocast(device, precision):
                model(x, **forward_kw).argmax(1)
        else:
            with autocast(device, precision):
                loss = torch.nn.functional.cross_entropy(model(x, **forward_kw), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        _sync(device)
        t2 = time.perf_counter()
        if step:
            data_s += t1 - t0
            total_s += t2 - t0
    return steps * batch_size / total_s, data_s / total_s


def median_network():
    space = get_space("fmnist28")
    return space, space.decode(REFERENCE_ARCHS.get("fmnist28_mnasnet").arch)


def measure_devices(args, dataset) -> dict:
    """Part ``devices``: the three networks, three kinds of step, per device and precision."""
    space = get_space("fmnist28")
    networks = {"small": space.smallest_arch(), "median": median_network()[1],
                "large": space.largest_arch()}
    configs = [("cpu", 1, False), ("cpu", 2, False)]
    if torch.cuda.is_available():
        configs += [("cuda", None, False), ("cuda", None, True)]
    kinds = ("standalone-train", "supernet-train", "supernet-score")
    load_before = os.getloadavg()
    samples: dict[tuple, list[tuple[float, float]]] = {}
    supernets = {}
    for _ in range(args.repeats):
        for dev_name, threads, amp in configs:
            device = torch.device(dev_name)
            if threads:
                torch.set_num_threads(threads)
            if dev_name not in supernets:
                torch.manual_seed(0)
                supernets[dev_name] = (MobileSupernet(space).to(device),
                                       dataset.train.to(device))
            supernet, data = supernets[dev_name]
            for net_name, arch in networks.items():
                for kind in kinds:
                    key = (dev_name, threads, amp, net_name, kind)
                    samples.setdefault(key, []).append(
                        measure(kind, arch, supernet, data, device, amp, args.steps,
                                args.batch_size))
    rows = []
    for (dev_name, threads, amp, net_name, kind), values in samples.items():
        device = torch.device(dev_name)
        if threads:
            torch.set_num_threads(threads)
        rows.append({"device": describe_device(device) if dev_name == "cuda" else "cpu",
                     "threads": threads, "amp": amp,
                     "precision": choose_precision(device, amp).name, "network": net_name,
                     "arch": networks[net_name].to_string(),
                     "macs": macs_params(networks[net_name])[0], "kind": kind,
                     "images_per_s": statistics.median(v[0] for v in values),
                     "images_per_s_all": [round(v[0], 1) for v in values],
                     "data_share": statistics.median(v[1] for v in values)})
    return _part(rows, load_before, steps=args.steps, repeats=args.repeats,
                 batch_size=args.batch_size)


def _part(rows: list[dict], load_before, **settings) -> dict:
    return {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0],
            **settings, "rows": rows}


# -- part "processes": 1 and 2 processes under torchrun ----------------------------------
def ddp_worker(out: str, steps: int, batch_size: int, threads: int) -> None:
    """Run under torchrun: ``steps`` timed training steps of the median network at global
    batch ``batch_size`` (each process its share, DDP); rank 0 writes the timings."""
    from torch.nn.parallel import DistributedDataParallel

    from mobile_nas.train.distributed import barrier, distributed, shard

    torch.set_num_threads(threads)
    with distributed("cpu") as ctx:
        dataset = load_dataset("fashion-mnist")
        torch.manual_seed(0)
        model = build_model(median_network()[1]).to(memory_format=torch.channels_last)
        net = DistributedDataParallel(model) if ctx.enabled else model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        stream = batches(dataset.train, batch_size, mean=dataset.mean, std=dataset.std,
                         shuffle=True, augment=True, rng=np.random.default_rng(0))
        step_s = []
        for step in range(steps + 1):  # the first step warms up and is not counted
            barrier(ctx)
            t0 = time.perf_counter()
            x, y = shard(ctx, *next(stream))
            loss = torch.nn.functional.cross_entropy(
                net(x.contiguous(memory_format=torch.channels_last)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            barrier(ctx)
            if step:
                step_s.append(time.perf_counter() - t0)
        if ctx.is_main:
            atomic_write_json(out, {"world_size": ctx.world_size, "backend": ctx.backend,
                                    "step_s": step_s})


def run_processes(nproc: int, threads: int, steps: int, batch_size: int) -> dict:
    """One torchrun job of :func:`ddp_worker`; its rank 0's timings."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "times.json"
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node", str(nproc), __file__, "--ddp-worker", str(out),
                        "--steps", str(steps), "--batch-size", str(batch_size),
                        "--threads", str(threads)], check=True, env=env)
        import json

        return json.loads(out.read_text())


def measure_processes(args) -> dict:
    load_before = os.getloadavg()
    samples: dict[tuple[int, int], list[float]] = {}
    backends = {}
    for _ in range(args.repeats):
        for nproc, threads in PROCESS_CONFIGS:
            got = run_processes(nproc, threads, args.steps, args.batch_size)
            samples.setdefault((nproc, threads), []).append(statistics.median(got["step_s"]))
            backends[(nproc, threads)] = got["backend"]
    rows = [{"processes": n, "threads_per_process": t, "backend": backends[(n, t)],
             "global_batch": args.batch_size, "per_process_batch": args.batch_size // n,
             "step_ms": 1e3 * statistics.median(v),
             "images_per_s": args.batch_size / statistics.median(v),
             "step_ms_all": [round(1e3 * x, 2) for x in v]} for (n, t), v in samples.items()]
    return _part(rows, load_before, steps=args.steps, repeats=args.repeats,
                 batch_size=args.batch_size, network=median_network()[1].to_string())


# -- part "loader": a folder dataset through DataLoader workers ---------------------------
def write_png_folder(root: Path, dataset, n: int) -> Path:
    """``n`` Fashion-MNIST training images as PNGs in ImageFolder layout (and a test
    image per class)."""
    from PIL import Image

    labels = dataset.test.labels
    first = [int(torch.nonzero(labels == c)[0]) for c in range(len(dataset.classes))]
    test = type(dataset.test)(dataset.test.images[first], labels[first])
    for split, images in (("train", dataset.train.subset(n, seed=0)), ("test", test)):
        for i, (img, label) in enumerate(zip(images.images, images.labels, strict=True)):
            folder = root / split / dataset.classes[int(label)]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img[0].numpy()).save(folder / f"{i}.png")
    return root


def measure_loader_once(train, kind: str, workers: int, steps: int, batch_size: int,
                        model, opt) -> float:
    """Images/s of ``steps`` batches (after one untimed batch: worker start-up)."""
    loader = train.loader(batch_size, shuffle=True, augment=True, workers=workers)
    it = loader.epoch(0)
    seen, t0 = 0, 0.0
    for step in range(steps + 1):
        x, y = next(it)
        if kind == "train":
            x = (x.float().div_(255.0) - 0.286) / 0.353
            loss = torch.nn.functional.cross_entropy(
                model(x.contiguous(memory_format=torch.channels_last)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if step == 0:
            t0 = time.perf_counter()
        else:
            seen += len(y)
    return seen / (time.perf_counter() - t0)


def measure_loader(args, dataset) -> dict:
    from mobile_nas.train.folder import read_folder

    load_before = os.getloadavg()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(median_network()[1]).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    samples: dict[tuple, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = write_png_folder(Path(tmp), dataset, LOADER_IMAGES)
        sets = {shape: read_folder(root, shape)[0] for shape, _, _ in LOADER_CONFIGS}
        for _ in range(args.repeats):
            for shape, workers, kind in LOADER_CONFIGS:
                samples.setdefault((shape, workers, kind), []).append(measure_loader_once(
                    sets[shape], kind, workers, args.steps, args.batch_size, model, opt))
    rows = [{"input": "x".join(map(str, shape)), "workers": w, "kind": kind,
             "images_per_s": statistics.median(v),
             "images_per_s_all": [round(x, 1) for x in v]}
            for (shape, w, kind), v in samples.items()]
    return _part(rows, load_before, steps=args.steps, repeats=args.repeats,
                 batch_size=args.batch_size, images=LOADER_IMAGES, training_threads=1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (median)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per repeat")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="what to measure (default all); the others' last results are kept")
    p.add_argument("--out", default=str(result_path("train_throughput")))
    p.add_argument("--ddp-worker", metavar="OUT", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.ddp_worker:
        ddp_worker(args.ddp_worker, args.steps, args.batch_size, args.threads)
        return 0
    doc = read_results(Path(f"{args.out}.json"))
    dataset = load_dataset("fashion-mnist")
    measurers = {"devices": lambda: measure_devices(args, dataset),
                 "processes": lambda: measure_processes(args),
                 "loader": lambda: measure_loader(args, dataset)}
    for part in args.parts:
        doc["parts"][part] = measurers[part]()
    doc.update({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "torch": torch.__version__, **machine_facts("cpu_count"),
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None})
    atomic_write_json(f"{args.out}.json", doc)
    text = render(doc)
    atomic_write_text(f"{args.out}.md", text)
    print(text)
    return 0


def read_results(path: Path) -> dict:
    """The last results (schema 1, the devices part alone, read as schema 2's)."""
    import json

    if not path.is_file():
        return {"schema_version": 2, "benchmark": "train_throughput", "parts": {}}
    doc = json.loads(path.read_text())
    if doc.get("schema_version") == 1:
        part = {k: doc[k] for k in ("date", "load_average_before", "load_average_after",
                                    "steps", "repeats", "batch_size", "rows")}
        doc = {"schema_version": 2, "benchmark": "train_throughput", "date": doc["date"],
               "torch": doc["torch"],
               "cpu_count": doc["cpu_count"], "gpu": doc["gpu"], "parts": {"devices": part}}
    return doc


def _section(title: str, d: dict, what: str, columns: list[str], rows: list[list]) -> list[str]:
    """A part's heading, its settings and load, and its table."""
    return [f"## {title}", "",
            f"{d['date']}: {what}; {d['steps']} timed steps x {d['repeats']} interleaved "
            f"repeats. Load average {d['load_average_before']:.2f} before, "
            f"{d['load_average_after']:.2f} after.", "",
            "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(map(str, r)) + " |" for r in rows)]


def render(doc: dict) -> str:
    parts = doc["parts"]
    lines = [f"# Training and scoring throughput, fmnist28 ({doc['date']})", "",
             f"torch {doc['torch']}, {doc['cpu_count']} CPU cores, GPU: {doc['gpu'] or 'none'}."
             " Medians; each part's date and load average are given with it.", ""]
    if "devices" in parts:
        d = parts["devices"]
        lines += _section(
            "Per device and precision", d, f"batch {d['batch_size']}",
            ["device", "threads", "precision", "network", "MACs", "kind", "images/s",
             "data share"],
            [[r["device"], r["threads"] or "-", r["precision"], r["network"],
              f"{r['macs'] / 1e6:.1f}M", r["kind"], f"{r['images_per_s']:.0f}",
              f"{r['data_share']:.0%}"] for r in d["rows"]])
        if doc["gpu"] is None:
            lines += ["", "No GPU on the machine that ran this: the CUDA rows (with and "
                          "without mixed precision) are still to be measured "
                          "(benchmarks/gpu_check.py)."]
        lines.append("")
    if "processes" in parts:
        d = parts["processes"]
        lines += _section(
            "Processes under torchrun", d,
            f"stand-alone training of the median network (`{d['network']}`), global batch "
            f"{d['batch_size']} split over the processes (DistributedDataParallel), each step "
            f"timed between barriers",
            ["processes", "threads each", "backend", "batch each", "step ms", "images/s"],
            [[r["processes"], r["threads_per_process"], r["backend"], r["per_process_batch"],
              f"{r['step_ms']:.1f}", f"{r['images_per_s']:.0f}"] for r in d["rows"]])
        lines += ["", "No speed-up is expected from a second process here: the machine has "
                      f"{doc['cpu_count']} cores, which one process with 2 threads already "
                      "uses, while two processes add a gradient all-reduce, a barrier per "
                      "step and batch norm on half batches. torchrun pays off with cores or "
                      "GPUs to spare (one process per GPU).", ""]
    if "loader" in parts:
        d = parts["loader"]
        lines += _section(
            "Folder dataset through DataLoader workers", d,
            f"{d['images']} Fashion-MNIST training images written as PNGs (ImageFolder "
            f"layout), batch {d['batch_size']}, shuffled, decoded, resized and augmented "
            f"(random crop, flip) in the workers; 'train' feeds the median network's training "
            f"step ({d['training_threads']} torch thread) at 28x28; a step is a batch, after "
            f"one untimed batch (worker start-up)",
            ["input", "workers", "kind", "images/s"],
            [[r["input"], r["workers"], r["kind"], f"{r['images_per_s']:.0f}"]
             for r in d["rows"]])
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
