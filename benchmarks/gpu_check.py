"""The GPU code path, checked on a machine with CUDA in under 8 minutes.

Stages (each recorded as it finishes, so a failing one leaves the others' results):

1. ``mobile-nas train --device cuda`` for one Fashion-MNIST epoch, without and with mixed
   precision (``--no-amp`` / ``--amp``), and on the CPU (``--device cpu``, a 5,000-image
   subset) as the reference;
2. 500 supernet training steps (batch 128) on the device;
3. 100 architectures scored by the supernet evaluator (batch-norm recalibration + 2,000
   validation images each);
4. ``torchrun --nproc_per_node 2 -m mobile_nas train ... --device cuda``: 2 ranks (on one GPU
   when only one is present: gloo; one GPU each: NCCL);
5. ``mobile-nas export`` of every checkpoint trained above: fp32 ONNX parity with PyTorch
   (within 1e-4, on the CPU) must hold alike for the CPU- and the GPU-trained ones.

Throughput is set beside the CPU rows of ``benchmarks/results/train_throughput.json``.
Writes ``benchmarks/results/gpu_check.json`` (every stage's command, output and figures)
and ``gpu_check.md``. ``--device cpu --dry-run`` runs every stage tiny on the CPU
(synthetic data; tests/benchmarks/test_gpu_check.py) and writes to ``--out`` or a
temporary folder.

    .venv/bin/python benchmarks/gpu_check.py                 # on the GPU machine
    .venv/bin/python benchmarks/gpu_check.py --device cpu --dry-run --out /tmp/gc
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from _shared import BENCHMARKS, REPO, machine_facts, result_path
from mobile_nas.atomic import atomic_write_json, atomic_write_text

ARCH = "fmnist28_mnasnet"
BUDGET_S = 8 * 60


@dataclass(frozen=True)
class Budget:
    """Sizes of the stages: the real check, or the dry run's tiny ones."""

    dataset: str
    epoch_subset: int | None  # None: the whole training split
    cpu_subset: int
    ddp_subset: int
    supernet_steps: int
    scored_archs: int
    stage_timeout_s: int


FULL = Budget("fashion-mnist", None, 5000, 16000, 500, 100, 240)
DRY = Budget("synthetic", 256, 256, 256, 4, 3, 300)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu")
    p.add_argument("--dry-run", action="store_true",
                   help="every stage tiny, synthetic data (to test this script)")
    p.add_argument("--out", help="results stem (default benchmarks/results/gpu_check; "
                                 "a temporary folder with --dry-run)")
    p.add_argument("--work", help="folder for the checkpoints and ONNX files (default: a "
                                  "temporary folder, printed)")
    args = p.parse_args(argv)
    budget = DRY if args.dry_run else FULL
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device here; run this on a GPU machine (or --device cpu "
              "--dry-run to test the script)", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else (
        Path(tempfile.mkdtemp(prefix="gpu_check_")) / "gpu_check" if args.dry_run
        else result_path("gpu_check"))
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu_check_work_"))
    work.mkdir(parents=True, exist_ok=True)  # checkpoints and ONNX files: not results
    print(f"checkpoints and ONNX files in {work}", file=sys.stderr)
    doc = {"schema_version": 1, "benchmark": "gpu_check", "dry_run": args.dry_run,
           "device": args.device, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "budget": budget.__dict__, "stages": {}}
    t_start = time.perf_counter()

    def record(name: str, fn: Callable[[], dict]) -> dict:
        t0 = time.perf_counter()
        try:
            result = {"status": "ok", **fn()}
        except Exception as exc:  # noqa: BLE001  (a stage's failure is a result)
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[-2000:]}
        result["seconds"] = round(time.perf_counter() - t0, 2)
        doc["stages"][name] = result
        doc["total_seconds"] = round(time.perf_counter() - t_start, 1)
        save(doc, out)
        print(f"{name}: {result['status']} ({result['seconds']:.1f} s)", file=sys.stderr)
        return result

    dev = args.device
    ckpts = {"cpu": work / "cpu.pt", "fp32": work / "fp32.pt", "amp": work / "amp.pt",
             "ddp": work / "ddp.pt"}
    record("train_fp32", lambda: train(budget, dev, ckpts["fp32"], "--no-amp"))
    record("train_amp", lambda: train(budget, dev, ckpts["amp"], "--amp"))
    record("train_cpu", lambda: train(budget, "cpu", ckpts["cpu"], "--no-amp",
                                      subset=budget.cpu_subset))
    record("supernet_and_scoring", lambda: supernet_and_scoring(budget, dev))
    record("torchrun_2", lambda: torchrun_train(budget, dev, ckpts["ddp"]))
    for name, path in ckpts.items():
        record(f"export_{name}", lambda path=path: export(path, budget))
    doc["parity"] = parity_summary(doc["stages"])
    doc["cpu_rows"] = cpu_rows()
    save(doc, out)
    print(render(doc))
    return 0 if all(s["status"] == "ok" for s in doc["stages"].values()) else 1


def machine() -> dict:
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return {**machine_facts("host", "cpu_count"), "gpus": gpus, "torch": torch.__version__,
            "cuda": torch.version.cuda, **machine_facts("python")}


def run(cmd: list[str], timeout: int) -> dict:
    """A command's JSON output (its last stdout line block); raises on failure."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-1500:]}")
    return json.loads(done.stdout)


def train(budget: Budget, device: str, out: Path, amp: str, subset: int | None = None) -> dict:
    subset = subset if subset is not None else budget.epoch_subset
    cmd = [sys.executable, "-m", "mobile_nas", "train", ARCH, "--dataset", budget.dataset,
           "--epochs", "1", "--device", device, amp, "--out", str(out), "--no-progress",
           "--json"] + (["--subset", str(subset)] if subset else [])
    doc = run(cmd, budget.stage_timeout_s)
    return {"command": " ".join(cmd[1:]), "result": doc,
            "images_per_s": doc["train_images"] / doc["train_seconds"]}


def torchrun_train(budget: Budget, device: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", "-m", "mobile_nas", "train", ARCH, "--dataset", budget.dataset, "--epochs",
           "1", "--subset", str(budget.ddp_subset), "--device", device, "--out", str(out),
           "--no-progress", "--json"]
    doc = run(cmd, budget.stage_timeout_s)
    if doc["world_size"] != 2:
        raise RuntimeError(f"expected 2 processes, the run had {doc['world_size']}")
    return {"command": " ".join(cmd[1:]), "result": doc,
            "images_per_s": doc["train_images"] / doc["train_seconds"]}


def supernet_and_scoring(budget: Budget, device: str) -> dict:
    from mobile_nas.device import resolve_device
    from mobile_nas.models.supernet import build_supernet
    from mobile_nas.search.supernet_evaluator import SupernetEvaluator
    from mobile_nas.space import get_space
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.supernet import SupernetTrainConfig, train_supernet

    dev = resolve_device(device)
    space = get_space("fmnist28")
    dataset = load_dataset(budget.dataset)
    torch.manual_seed(0)
    supernet = build_supernet(space)
    config = SupernetTrainConfig(steps=budget.supernet_steps, batch_size=128,
                                 warmup_steps=max(1, budget.supernet_steps // 10))
    result = train_supernet(supernet, dataset, config, progress=False, device=dev)
    evaluator = SupernetEvaluator(supernet=supernet, dataset=dataset, device=dev)
    archs = [space.sample(i) for i in range(budget.scored_archs)]
    t0 = time.perf_counter()
    scores = [evaluator.evaluate(a) for a in archs]
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    score_s = time.perf_counter() - t0
    return {"supernet_steps": result.steps, "supernet_seconds": result.seconds,
            "supernet_images_per_s": result.steps * config.batch_size / result.seconds,
            "final_loss": result.final_loss, "scored_archs": len(archs),
            "score_seconds": score_s, "archs_per_s": len(archs) / score_s,
            "score_images_per_s": len(archs) * evaluator.n_val / score_s,
            "scores": [[a.to_string(), s] for a, s in zip(archs, scores, strict=True)]}


def export(checkpoint: Path, budget: Budget) -> dict:
    if not checkpoint.is_file():
        raise RuntimeError(f"{checkpoint.name} was not trained (its stage failed)")
    onnx = checkpoint.with_suffix(".onnx")
    cmd = [sys.executable, "-m", "mobile_nas", "export", str(checkpoint), "--out", str(onnx),
           "--runs", "10", "--json"]
    doc = run(cmd, budget.stage_timeout_s)
    return {"command": " ".join(cmd[1:]), "max_abs_diff": doc.get("max_abs_diff"),
            "test_accuracy_onnx": doc.get("test_accuracy"), "report": doc}


def parity_summary(stages: dict) -> dict:
    """Every export within the fp32 tolerance, the CPU-trained one and the GPU-trained ones
    alike."""
    from mobile_nas.export.deploy import FP32_TOLERANCE

    diffs = {k.removeprefix("export_"): v.get("max_abs_diff") for k, v in stages.items()
             if k.startswith("export_")}
    ok = all(d is not None and d <= FP32_TOLERANCE for d in diffs.values())
    return {"tolerance": FP32_TOLERANCE, "max_abs_diff": diffs, "all_within": ok}


def cpu_rows() -> dict:
    """This project's CPU figures for the median network (train_throughput's last run)."""
    sys.path.insert(0, str(BENCHMARKS))
    from train_throughput import read_results

    doc = read_results(result_path("train_throughput.json"))
    rows = doc.get("parts", {}).get("devices", {}).get("rows", [])
    pick = {}
    for r in rows:
        if r["device"] == "cpu" and r["network"] == "median":
            key = f"{r['kind']} ({r['threads']} threads)"
            pick[key] = r["images_per_s"]
    return {"date": doc.get("parts", {}).get("devices", {}).get("date"), "median": pick}


def save(doc: dict, out: Path) -> None:
    atomic_write_json(f"{out}.json", doc)
    atomic_write_text(f"{out}.md", render(doc))


def render(doc: dict) -> str:
    m, st = doc["machine"], doc["stages"]
    lines = [f"# GPU check ({doc['date']}{', dry run' if doc['dry_run'] else ''})", "",
             f"{m['host']}: {', '.join(m['gpus']) or 'no GPU'}, {m['cpu_count']} CPU cores, "
             f"torch {m['torch']} (CUDA {m['cuda']}), device `{doc['device']}`. "
             f"Total {doc.get('total_seconds', 0):.0f} s (budget {BUDGET_S} s).", "",
             "| stage | status | seconds | figure |", "|---|---|---|---|"]
    for name, s in st.items():
        if s["status"] != "ok":
            figure = s.get("error", "")[:160].replace("|", "/").replace("\n", " ")
        elif "images_per_s" in s:
            r = s["result"]
            figure = (f"{s['images_per_s']:.0f} images/s (train + validation), val "
                      f"{r['val_accuracy']:.4f}, test {r['test_accuracy']:.4f}, "
                      f"{r['precision']}, {r['world_size']} process(es) {r['backend']}")
        elif "archs_per_s" in s:
            figure = (f"{s['supernet_steps']} supernet steps at "
                      f"{s['supernet_images_per_s']:.0f} images/s; {s['scored_archs']} archs "
                      f"scored at {s['archs_per_s']:.2f}/s")
        else:
            figure = f"ONNX parity max abs diff {s['max_abs_diff']:.2e}"
        lines.append(f"| {name} | {s['status']} | {s['seconds']:.1f} | {figure} |")
    if "parity" in doc:
        p = doc["parity"]
        lines += ["", f"fp32 ONNX parity (tolerance {p['tolerance']:g}) of the CPU- and "
                      f"GPU-trained checkpoints: "
                      f"{'all within' if p['all_within'] else 'NOT all within'}."]
    if doc.get("cpu_rows", {}).get("median"):
        c = doc["cpu_rows"]
        lines += ["", f"CPU rows for the median network (train_throughput, {c['date']}): "
                  + ", ".join(f"{k} {v:.0f} images/s" for k, v in c["median"].items())
                  + " (steps alone; the train rows above include validation)."]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
