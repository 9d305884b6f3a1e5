"""NASNet cell transfer on Fashion-MNIST: search a cell on a small proxy, restack it larger.

1. Search: the RL controller (``--strategy``) searches the ``nasnet`` space (N=1 cell per
   stack, F=8 filters, 1x28x28) for ``--trials`` trials; accuracy comes from a cell supernet
   (one module per edge and operation) trained on Fashion-MNIST's training split with the
   ``--preset`` budget and scored on held-out training images after BN recalibration; the
   reward is MnasNet's soft reward under ``--macs-target`` (and ``--latency-target-ms`` from
   the shipped ``latency_tables/nasnet.json``, if given). The best trial's cell wins.
2. Transfer: the winning cell is trained from scratch with the same recipe (``--train``
   images, ``--epochs``) in the small network and in the large one (``--large``, default
   N=2, F=12), and both are tested on ``--test`` Fashion-MNIST test images.
3. Costs: MACs and params (fvcore), onnxruntime latency of both exported networks
   (batch 1, 1 thread, interleaved repeats, medians).

Everything is resumable: the search is an Optuna study in ``<work>/search``, finished steps
are kept in ``<work>/state.json`` and training checkpoints in ``<work>``. Results:
``benchmarks/results/nasnet_transfer.{json,md}``. Run: ``python benchmarks/nasnet_transfer.py``
(or, after the search, ``--only small`` and ``--only large`` in two processes; about an hour
on a 2-core VM).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from _shared import machine_facts, result_path
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.cost.latency.measure import measure_archs_ms
from mobile_nas.cost.model_costs import model_costs
from mobile_nas.search.strategies.reinforce import options_before_edit
from mobile_nas.space import get_space
from mobile_nas.space.scaled import transfer_arch
from mobile_nas.train.data import load_dataset
from mobile_nas.train.trainer import train_architecture


def _recipe(args, n_train: int) -> dict:
    return {"batch_size": args.batch_size, "optimizer": "adamw", "lr": args.lr,
            "train_subset": n_train, "val_subset": args.val, "seed": args.seed,
            "label_smoothing": 0.0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--strategy", default="rl")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--preset", default="quick", help="supernet budget (quick or default)")
    p.add_argument("--macs-target", type=float, default=15e6)
    p.add_argument("--latency-target-ms", type=float, default=None)
    p.add_argument("--selected", metavar="ARCH",
                   help="skip the search and transfer this cell (recorded as given)")
    p.add_argument("--selected-from", default="", metavar="TEXT",
                   help="with --selected: where the cell came from, for the results")
    p.add_argument("--train", type=int, default=15000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--val", type=int, default=2000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--small", default="nasnet")
    p.add_argument("--large", default="nasnet@n2-f12")
    p.add_argument("--only", choices=("search", "small", "large"),
                   help="only search, or train only this network (after the search, run two "
                        "processes in parallel; the last one to finish writes the results)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="/tmp/nasnet_transfer")
    p.add_argument("--out", default=str(result_path("nasnet_transfer")))
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    state["config"] = vars(args)

    data = load_dataset("fashion-mnist", val_size=5000, seed=args.seed)
    data = dataclasses.replace(data, test=data.test.subset(args.test, seed=args.seed))
    small, large = get_space(args.small), get_space(args.large)

    # 1. search on the small proxy with the cell supernet
    if args.selected and "selected" not in state:
        state["search"] = {"given": args.selected, "from": args.selected_from}
        state["selected"] = small.decode(args.selected).to_string()
        state = _save(state_path, state)
    if "search" not in state:
        from mobile_nas.search.runner import SearchConfig, run_search

        result = run_search(SearchConfig(
            space=args.small, strategy=args.strategy, trials=args.trials,
            out_dir=str(work / "search"), dataset="fashion-mnist",
            macs_target=args.macs_target, latency_target_ms=args.latency_target_ms,
            preset=args.preset, seed=args.seed, resume=True, threads=args.threads,
            strategy_options=options_before_edit(args.strategy, {})))
        best = result.best
        state["search"] = {"trials": result.trials, "seconds": round(result.seconds, 1),
                           "best": {k: best[k] for k in ("arch", "accuracy", "macs",
                                                         "latency_ms", "reward")},
                           "pareto": [{k: t[k] for k in ("arch", "accuracy", "macs",
                                                         "latency_ms")}
                                      for t in result.pareto]}
        state["selected"] = best["arch"]
        state = _save(state_path, state)
    best = small.decode(state["selected"])
    if args.only == "search":
        print(f"selected {state['selected']}")
        return 0

    # 2. train the selected cell small and large
    runs = state.setdefault("runs", {})
    for role, space in (("small", small), ("large", large)):
        if role in runs or (args.only and role != args.only):
            continue
        arch = transfer_arch(best, space)
        t0 = time.time()
        ckpt = train_architecture(arch, data, out=work / f"{role}.pt", epochs=args.epochs,
                                  resume=True, progress=True, **_recipe(args, args.train))
        test_acc = ckpt.metrics["test_accuracy"]  # on the --test subset (data.test)
        costs = model_costs(arch)
        runs[role] = {"space": arch.space, "cells": space.cells, "filters": space.filters,
                      "test_accuracy": test_acc, "val_accuracy": ckpt.metrics["val_accuracy"],
                      "macs": costs.macs, "params": costs.params,
                      "train_seconds": round(time.time() - t0, 1)}
        state = _save(state_path, state)
        runs = state["runs"]
        print(f"{role}: test {test_acc:.4f} ({time.time() - t0:.0f} s)", flush=True)

    if set(runs) != {"small", "large"}:
        print(f"trained {sorted(runs)}; run again (or wait for the other --only process) "
              "to measure latency and write the results")
        return 0
    # 3. latency of both, interleaved
    if "latency" not in state:
        arch_s, arch_l = transfer_arch(best, small), transfer_arch(best, large)
        lat = measure_archs_ms([arch_s, arch_l], threads=1, rounds=15, runs_per_round=5)
        state["latency"] = {"small": lat[0].summary(), "large": lat[1].summary()}
        atomic_write_json(state_path, state)

    result = {"schema_version": 1, "benchmark": "nasnet_transfer", "config": state["config"],
              "machine": machine_facts("cpu", "python", torch=torch.__version__,
                                       torch_threads=args.threads),
              "search": state["search"], "selected": state["selected"], "runs": runs,
              "latency_ms": state["latency"]}
    atomic_write_json(args.out + ".json", result)
    atomic_write_text(args.out + ".md", _markdown(result))
    print(_markdown(result))
    return 0


def _save(path: Path, state: dict) -> dict:
    """Merges ``state`` into the file (other --only processes write it too) and returns the
    merged state."""
    if path.is_file():
        disk = json.loads(path.read_text())
        for key in ("runs",):
            state[key] = {**disk.get(key, {}), **state.get(key, {})}
    atomic_write_json(path, state)
    return state


def _markdown(r: dict) -> str:
    c = r["config"]
    search = r["search"]
    lines = [
        "# NASNet cell transfer on Fashion-MNIST",
        "",
        f"Machine: {r['machine']['cpu']} (2-core shared VM, torch {r['machine']['torch']}, "
        f"{r['machine']['torch_threads']} thread). Recipe: AdamW lr {c['lr']}, batch "
        f"{c['batch_size']}, cosine schedule, no augmentation.",
        "",
    ]
    if "given" in search:
        lines.append("Selection: the cell was given with `--selected` (no search in this run): "
                     + (search.get("from") or "origin not recorded") + ".")
    else:
        lines += [
            f"Search: `{c['strategy']}` for {search['trials']} trials on `{c['small']}` "
            f"({search['seconds'] / 60:.0f} min), accuracy from a cell supernet "
            f"(`{c['preset']}` budget) on held-out training images, MnasNet soft reward with "
            f"MAC target {c['macs_target'] / 1e6:.0f}M"
            + (f" and latency target {c['latency_target_ms']} ms"
               if c.get("latency_target_ms") else "") + ".",
            "",
            "| search Pareto front | supernet val acc | MACs | predicted ms |",
            "| --- | --- | --- | --- |",
        ]
        for i, t in enumerate(search["pareto"]):
            mark = " (selected)" if t["arch"] == r["selected"] else ""
            lines.append(f"| {i}{mark} | {t['accuracy']:.4f} | {t['macs'] / 1e6:.2f}M | "
                         f"{t['latency_ms']:.3f} |")
    lines += [
        "",
        f"Selected cell: `{r['selected']}`",
        "",
        f"Transfer: the selected cell trained on {c['train']} images x {c['epochs']} epochs, "
        f"tested on {c['test']} Fashion-MNIST test images; latency = onnxruntime, batch 1, "
        "1 thread, median of interleaved repeats.",
        "",
        "| network | space | N | F | test acc | MACs | params | latency ms (median) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for role in ("small", "large"):
        x, lat = r["runs"][role], r["latency_ms"][role]
        lines.append(f"| {role} | `{x['space']}` | {x['cells']} | {x['filters']} | "
                     f"{x['test_accuracy']:.4f} | {x['macs'] / 1e6:.2f}M | "
                     f"{x['params'] / 1e3:.1f}k | {lat['median_ms']:.3f} |")
    s, g = r["runs"]["small"], r["runs"]["large"]
    lat = r["latency_ms"]["large"]["median_ms"] / r["latency_ms"]["small"]["median_ms"]
    lines += ["", f"Large vs small: accuracy {g['test_accuracy'] - s['test_accuracy']:+.4f}, "
                  f"MACs x{g['macs'] / s['macs']:.2f}, latency x{lat:.2f}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
