"""Training and scoring throughput (images/s) on fmnist28, per device and precision.

Measures, for the space's smallest network, the hand-designed MnasNet-style reference (a
median-sized network) and the largest network:

* stand-alone training steps (``train_model``'s step: forward, loss, backward, SGD),
* supernet training steps on that network's path through the supernet,
* supernet scoring (forward passes in eval mode, as the evaluator scores a path),

on the CPU with 1 and 2 torch threads and, when a GPU is present, on it with and without mixed
precision. Repeats are interleaved across configurations and the median is reported; the share
of each step spent making the batch (indexing, augmentation, normalisation: the data path)
is reported beside it. Run it alone: on a busy machine it measures the load (the load average
is recorded before and after).

    .venv/bin/python benchmarks/train_throughput.py [--repeats 5] [--steps 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.device import autocast, choose_precision, describe_device, grad_scaler
from mobile_nas.models import build_model
from mobile_nas.models.supernet import MobileSupernet
from mobile_nas.search.costs import macs_params
from mobile_nas.space import REFERENCE_ARCHS, get_space
from mobile_nas.train.data import batches, load_dataset

RESULTS = Path(__file__).resolve().parent / "results"


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (median)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per repeat")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--out", default=str(RESULTS / "train_throughput"))
    args = p.parse_args(argv)
    space = get_space("fmnist28")
    networks = {"small": space.smallest_arch(),
                "median": space.decode(REFERENCE_ARCHS.get("fmnist28_mnasnet").arch),
                "large": space.largest_arch()}
    dataset = load_dataset("fashion-mnist")
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
    doc = {"schema_version": 1, "benchmark": "train_throughput",
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "torch": torch.__version__, "cpu_count": os.cpu_count(),
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "batch_size": args.batch_size, "steps": args.steps, "repeats": args.repeats,
           "load_average_before": load_before[0], "load_average_after": os.getloadavg()[0],
           "rows": rows}
    atomic_write_json(f"{args.out}.json", doc)
    text = render(doc)
    atomic_write_text(f"{args.out}.md", text)
    print(text)
    return 0


def render(doc: dict) -> str:
    lines = [f"# Training and scoring throughput, fmnist28 ({doc['date']})", "",
             f"torch {doc['torch']}, {doc['cpu_count']} CPU cores, GPU: {doc['gpu'] or 'none'}."
             f" Batch {doc['batch_size']}, {doc['steps']} timed steps x {doc['repeats']} "
             f"interleaved repeats, median. Load average {doc['load_average_before']:.2f} "
             f"before, {doc['load_average_after']:.2f} after.", "",
             "| device | threads | precision | network | MACs | kind | images/s | data share |",
             "|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| {r['device']} | {r['threads'] or '-'} | {r['precision']} | "
                     f"{r['network']} | {r['macs'] / 1e6:.1f}M | {r['kind']} | "
                     f"{r['images_per_s']:.0f} | {r['data_share']:.0%} |")
    if doc["gpu"] is None:
        lines += ["", "No GPU on the machine that ran this: the CUDA rows (with and without "
                      "mixed precision) are still to be measured."]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
