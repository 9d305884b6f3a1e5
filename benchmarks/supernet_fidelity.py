"""Supernet fidelity: Kendall tau between supernet and stand-alone accuracy on fmnist28.

Phases (run separately so they can run in parallel and resume):

  supernet    train the weight-sharing supernet (checkpointed; resumable)
  standalone  train each chosen architecture alone (results appended as they finish)
  report      score the architectures with the supernet, compute Kendall tau / Spearman,
              write benchmarks/results/supernet_fidelity.{json,md}

Architectures: ``--archs`` picked from 400 seeded samples at evenly spaced MAC quantiles, so
they span the space's range of sizes. Everything uses the validation split (never test).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.space import get_space

RESULTS = Path(__file__).parent / "results"


def pick_archs(space, n: int, seed: int = 0):
    from mobile_nas.search.costs import macs_params

    rng = np.random.default_rng(seed)
    pool = {}
    while len(pool) < 400:
        a = space.sample(rng)
        pool[a] = macs_params(a)[0]
    archs = sorted(pool, key=pool.get)
    idx = np.linspace(0, len(archs) - 1, n).round().astype(int)
    return [archs[i] for i in idx]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("phase", choices=("supernet", "standalone", "report"))
    ap.add_argument("--work", default="/tmp/mnas_fidelity", help="scratch folder")
    ap.add_argument("--archs", type=int, default=12)
    ap.add_argument("--supernet-steps", type=int, default=800)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--standalone-images", type=int, default=6000)
    ap.add_argument("--standalone-epochs", type=int, default=1)
    ap.add_argument("--val-images", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--supernet", help="report: score with this trained supernet instead "
                                       "(e.g. a search's RUN_DIR/supernet.pt)")
    ap.add_argument("--supernet-note", default="", help="report: how that supernet was made")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    space = get_space("fmnist28")
    from mobile_nas.train.data import load_dataset

    ds = load_dataset("fashion-mnist")
    archs = pick_archs(space, args.archs)
    from mobile_nas.train.supernet import SupernetTrainConfig

    sn_config = SupernetTrainConfig(steps=args.supernet_steps, batch_size=args.batch_size,
                                    lr=0.1, warmup_steps=min(50, args.supernet_steps // 10))
    sn_path = Path(args.supernet) if args.supernet else work / "supernet.pt"
    if args.phase == "supernet":
        from mobile_nas.models.supernet import MobileSupernet
        from mobile_nas.train.supernet import train_supernet

        t0 = time.time()
        r = train_supernet(MobileSupernet(space), ds, sn_config, checkpoint_path=sn_path,
                           checkpoint_every=50, progress=False)
        atomic_write_json(work / "supernet_train.json",
                          {"seconds": time.time() - t0, "final_loss": r.final_loss,
                           "resumed_from_step": r.resumed_from_step})
    elif args.phase == "standalone":
        from mobile_nas.models import build_model
        from mobile_nas.train.trainer import evaluate_accuracy, train_model

        out = work / "standalone.json"
        done = json.loads(out.read_text()) if out.exists() else {}
        val = ds.val.subset(args.val_images, seed=2)
        for arch in archs:
            key = arch.to_string()
            if key in done:
                continue
            torch.manual_seed(0)
            model = build_model(arch)
            t0 = time.time()
            train_model(model, ds, epochs=args.standalone_epochs, batch_size=args.batch_size,
                        train_subset=args.standalone_images, val_subset=200, seed=0,
                        progress=False)
            done[key] = {"accuracy": evaluate_accuracy(model, val, ds.mean, ds.std),
                         "seconds": time.time() - t0}
            atomic_write_json(out, done)
            print(key, done[key], flush=True)
    else:
        report(args, space, ds, archs, sn_path, work)


def report(args, space, ds, archs, sn_path, work) -> None:
    from scipy.stats import kendalltau, spearmanr

    from mobile_nas.search.costs import macs_params
    from mobile_nas.search.supernet_evaluator import SupernetEvaluator
    from mobile_nas.train.supernet import load_supernet

    standalone = json.loads((work / "standalone.json").read_text())
    ev = SupernetEvaluator(supernet=load_supernet(sn_path, space), dataset=ds, calib_batches=4,
                           calib_batch_size=128, val_images=args.val_images, seed=0)
    rows = []
    for arch in archs:
        key = arch.to_string()
        if key not in standalone:
            continue
        t0 = time.time()
        acc = ev.evaluate(arch)
        rows.append({"arch": key, "macs": macs_params(arch)[0],
                     "standalone_accuracy": standalone[key]["accuracy"],
                     "standalone_seconds": round(standalone[key]["seconds"], 1),
                     "supernet_accuracy": acc, "supernet_eval_seconds": time.time() - t0})
    sa = [r["standalone_accuracy"] for r in rows]
    su = [r["supernet_accuracy"] for r in rows]
    tau = kendalltau(sa, su).statistic
    rho = spearmanr(sa, su).statistic
    tau_macs = kendalltau(sa, [r["macs"] for r in rows]).statistic
    train = json.loads((work / "supernet_train.json").read_text()) \
        if (work / "supernet_train.json").exists() else {}
    doc = {"schema_version": 1, "benchmark": "supernet_fidelity", "space": "fmnist28",
           "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
           "machine": {"cpu": cpu_model(), "cores": 2, "shared": True,
                       "torch_threads": args.threads},
           "settings": {"supernet_steps": args.supernet_steps, "batch_size": args.batch_size,
                        "supernet_images_seen": args.supernet_steps * args.batch_size,
                        "standalone_images": args.standalone_images,
                        "standalone_epochs": args.standalone_epochs,
                        "val_images": args.val_images, "calib": "4 x 128 train images"},
           "supernet_train_seconds": train.get("seconds"), "supernet": str(sn_path),
           "supernet_note": args.supernet_note,
           "kendall_tau": tau, "spearman_rho": rho,
           "kendall_tau_standalone_vs_macs": tau_macs, "archs": rows}
    RESULTS.mkdir(exist_ok=True)
    atomic_write_json(RESULTS / "supernet_fidelity.json", doc)
    lines = [
        "# Supernet fidelity (fmnist28, Fashion-MNIST validation split)", "",
        f"Machine: {doc['machine']['cpu']}, 2-core shared VM (3-4 other engineers' jobs "
        f"running), torch {torch.__version__}, {args.threads} thread(s). Date {doc['date']}.",
        "",
        f"Supernet: {args.supernet_steps} steps x {args.batch_size} images (uniform single "
        f"path) {args.supernet_note}. Stand-alone: each arch trained "
        f"{args.standalone_epochs} epoch(s) on {args.standalone_images} images. Both scored "
        f"on the same {args.val_images} validation images.", "",
        f"**Kendall tau = {tau:.3f}**, Spearman rho = {rho:.3f} over {len(rows)} archs "
        f"(stand-alone accuracy vs MACs alone: tau = {tau_macs:.3f}).", "",
        "| arch | MACs (M) | stand-alone acc | supernet acc |", "|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["macs"]):
        lines.append(f"| `{r['arch']}` | {r['macs'] / 1e6:.2f} | "
                     f"{100 * r['standalone_accuracy']:.1f}% | "
                     f"{100 * r['supernet_accuracy']:.1f}% |")
    atomic_write_text(RESULTS / "supernet_fidelity.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
