"""``mobile-nas demo``: the whole path on Fashion-MNIST, minutes on a laptop CPU.

Shipped pretrained supernet → RL search under a latency target (shipped fmnist28 table) → train
the winner
→ export fp32 and INT8 ONNX (verified; server profile, and the mobile profile with its ORT
format files and NNAPI/CoreML coverage) → time both → report. Every stage keeps its outputs
in ``--out`` and is skipped or resumed when the demo is run again.
"""

from __future__ import annotations

import argparse
import sys
import time

from mobile_nas.commands._common import add_device_args, positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="run the whole path on Fashion-MNIST (minutes on a CPU)",
        description="On Fashion-MNIST with the shipped fmnist28 latency table and the shipped "
                    "pretrained supernet (a quick one is trained instead with --data-dir), "
                    "run the RL search under a latency target (hard reward), train the "
                    "winner, export verified fp32 and INT8 ONNX (server "
                    "profile, and the mobile profile with .ort files and onnxruntime's "
                    "NNAPI/CoreML usability analysis), time both with onnxruntime and write "
                    "the HTML report. Re-running resumes.",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--latency-target-ms", type=positive_float, default=0.4,
                   help="latency target on the shipped table (default 0.4 ms)")
    p.add_argument("--trials", type=positive_int, default=40, help="search trials (default 40)")
    p.add_argument("--epochs", type=positive_int, default=2,
                   help="epochs to train the winner (default 2)")
    p.add_argument("--train-subset", type=positive_int, metavar="N",
                   help="train the winner on N training images (default: all 55000)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: torch's)")
    add_device_args(p)
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the search and of the winner's training (default 0; the "
                        "train/validation split stays the shipped supernet's)")
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST files")
    p.set_defaults(handler=_demo)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from mobile_nas.atomic import atomic_write_json
    from mobile_nas.cost.model_costs import model_costs
    from mobile_nas.errors import MobileNasError
    from mobile_nas.export.deploy import export_checkpoint
    from mobile_nas.export.usability import PROVIDERS, ProviderCoverage
    from mobile_nas.report.build import DEPLOY_FILE, build_report
    from mobile_nas.search.runner import SearchConfig, run_search
    from mobile_nas.space import Architecture
    from mobile_nas.train.checkpoint import load_checkpoint
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.trainer import train_architecture

    t_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MobileNasError(f"--out {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "search"
    stage_s: dict[str, float] = {}

    _say(f"== 1/5 search: shipped supernet + RL controller, {args.trials} trials, latency "
         f"target {args.latency_target_ms:g} ms (shipped fmnist28 table)")
    t = time.perf_counter()
    best = _finished_search(run_dir, args)
    if best is None:
        config = SearchConfig(space="fmnist28", strategy="rl", trials=args.trials,
                              out_dir=str(run_dir), dataset="fashion-mnist",
                              data_dir=args.data_dir, latency_target_ms=args.latency_target_ms,
                              reward="hard", preset="quick", resume=True, seed=args.seed,
                              threads=args.threads, device=args.device, amp=args.amp)
        best = run_search(config).best
    else:
        _say(f"   reusing the finished search in {run_dir}")
    stage_s["search"] = time.perf_counter() - t
    arch = Architecture.from_string(best["arch"], "fmnist28")
    _say(f"   best {best['arch']}: proxy accuracy {100 * best['accuracy']:.1f}%, "
         f"{best['latency_ms']:.3f} ms (table), {best['macs'] / 1e6:.2f}M MACs "
         f"[{'feasible' if best['feasible'] else 'over target'}] ({stage_s['search']:.0f} s)")

    _say(f"== 2/5 train the winner: {args.epochs} epochs, SGD + cosine, label smoothing")
    t = time.perf_counter()
    model_pt = out / "model.pt"
    ckpt = None
    if model_pt.is_file():
        try:
            ckpt = load_checkpoint(model_pt)
        except MobileNasError:
            ckpt = None
        if ckpt is not None and (ckpt.arch != arch.to_string()
                                 or ckpt.recipe.get("epochs") != args.epochs
                                 or ckpt.recipe.get("train_subset") != args.train_subset):
            ckpt = None
    if ckpt is None:
        dataset = load_dataset("fashion-mnist", data_dir=args.data_dir,
                               seed=SearchConfig.split_seed)
        ckpt = train_architecture(arch, dataset, out=model_pt, epochs=args.epochs,
                                  resume=True, train_subset=args.train_subset, seed=args.seed,
                                  device=args.device, amp=args.amp)
    else:
        _say(f"   reusing {model_pt}")
    stage_s["train"] = time.perf_counter() - t
    m = ckpt.metrics
    _say(f"   test accuracy {100 * m['test_accuracy']:.2f}% ({stage_s['train']:.0f} s)")

    _say("== 3/5 export fp32 + INT8 ONNX (server and mobile profiles), verify, time both "
         "(onnxruntime, batch 1, 1 thread)")
    t = time.perf_counter()
    onnx_path = out / "model.onnx"
    report = export_checkpoint(model_pt, onnx_path, int8=True, data_dir=args.data_dir,
                               time_runs=200, threads=1, int8_required=False,
                               log=lambda s: _say(f"   {s}"))
    mobile = export_checkpoint(model_pt, out / "model.mobile.onnx", int8=True, mobile=True,
                               data_dir=args.data_dir, time_runs=200, threads=1,
                               int8_required=False, log=lambda s: _say(f"   {s}"))
    from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, resolve_table
    from mobile_nas.report.references import compare_with_references

    predictor = LatencyPredictor(LatencyTable.load(resolve_table("fmnist28")))
    compared = compare_with_references(arch, onnx_path, predict_ms=predictor.predict_ms)
    stage_s["export"] = time.perf_counter() - t

    _say("== 4/5 report")
    t = time.perf_counter()
    costs = model_costs(arch)
    deploy = {"schema_version": 1, "arch": arch.to_string(), "space": arch.space,
              "macs": costs.macs, "params": costs.params,
              "train": {"path": str(model_pt), "epochs": m["epochs"],
                        "train_images": m["train_images"], "seconds": m["seconds"],
                        "val_accuracy": m["val_accuracy"],
                        "test_accuracy": m["test_accuracy"]},
              "export": report.to_json(), "export_mobile": mobile.to_json(),
              "references": [c.to_json() for c in compared], "stage_seconds": stage_s}
    atomic_write_json(run_dir / DEPLOY_FILE, deploy)
    files = build_report(run_dir)
    stage_s["report"] = time.perf_counter() - t
    deploy["stage_seconds"] = stage_s
    deploy["total_seconds"] = time.perf_counter() - t_start
    atomic_write_json(run_dir / DEPLOY_FILE, deploy)
    atomic_write_json(out / "summary.json", deploy)

    _say("== 5/5 done")
    timing = report.timing or {}
    q = report.int8
    print(f"architecture   {arch.to_string()}")
    print(f"               {costs.macs / 1e6:.2f}M MACs, {costs.params / 1e3:.1f}k params")
    print(f"test accuracy  {100 * m['test_accuracy']:.2f}% (PyTorch), "
          f"{100 * report.test_accuracy:.2f}% fp32 ONNX"
          + (f", {100 * q.test_accuracy:.2f}% INT8 ONNX" if q else ""))
    lat = [f"{k} {timing[k]['p50_ms']:.3f} ms" for k in ("fp32", "int8") if k in timing]
    pred = (f"; predicted {report.predicted_latency_ms:.3f} ms (table, target "
            f"{args.latency_target_ms:g})" if report.predicted_latency_ms is not None else "")
    print(f"latency        measured p50 {', '.join(lat)} (batch 1, 1 thread){pred}")
    if "speedup" in timing:
        print(f"INT8 speed-up  x{timing['speedup']:.2f}")
    if report.int8_error:
        print(f"INT8           not kept: {report.int8_error}")
    print(f"search         {best['trials']} trials, {run_dir}/ (best.json, pareto.json, "
          f"trials.csv, study.db)")
    print(f"model          {model_pt}")
    print(f"onnx           {onnx_path}" + (f", {q.path}" if q else ""))
    print(f"mobile         {mobile.path}, {mobile.ort['path']}"
          + (f", {mobile.ort['int8_path']}" if mobile.ort["int8_path"] else "")
          + f" (batch 1; parity max |diff| {mobile.max_abs_diff:.1e}, test accuracy "
          f"{100 * mobile.test_accuracy:.2f}%)")
    for i, p in enumerate(PROVIDERS):  # onnxruntime's mobile usability analysis
        label = "mobile EPs" if i == 0 else ""
        print(f"{label:15s}{ProviderCoverage.from_json(mobile.mobile_usability[p]).summary()}")
    server = [report.mobile_usability[p] for p in PROVIDERS]
    print(f"{'':15s}(server {onnx_path.name}: " + ", ".join(
        f"{c['provider']} {c['supported_nodes']}/{c['nodes']}" for c in server) + " nodes)")
    _print_comparison(compared)
    print(f"report         {files.html}")
    print(f"time           {deploy['total_seconds'] / 60:.1f} min ("
          + ", ".join(f"{k} {v:.0f} s" for k, v in stage_s.items()) + ")")
    return 0


def _print_comparison(compared) -> None:
    """The pick beside the hand-designed references: same timing run, stand-alone accuracy
    (1-epoch ground truth, validation split) where the network is in the shipped set."""
    if not compared:
        return
    print("vs hand design (fp32, batch 1, 1 thread, one interleaved timing run; accuracy: "
          "stand-alone 1-epoch ground truth, validation)")
    for c in compared:
        acc = (f"val {100 * c.ground_truth_val:.2f}%" if c.ground_truth_val is not None
               else "not in the ground-truth set")
        pred = f"predicted {c.predicted_ms:.3f} ms, " if c.predicted_ms is not None else ""
        print(f"  {c.name:22s} measured {c.measured_ms:.3f} ms ({pred.rstrip(', ')}); {acc}")
    print("  measured over 5 seeds x 3 strategies: benchmarks/results/search_vs_groundtruth.md")


def _finished_search(run_dir, args) -> dict | None:
    """best.json of an earlier demo search with the same settings and enough trials."""
    import json

    try:
        best = json.loads((run_dir / "best.json").read_text())
        pareto = json.loads((run_dir / "pareto.json").read_text())
    except (OSError, ValueError):
        return None
    reward_fn = pareto.get("reward_fn") or pareto.get("reward")
    targets = reward_fn.get("targets", {}) if isinstance(reward_fn, dict) else {}
    same = (best.get("space") == "fmnist28" and best.get("strategy") == "rl"
            and targets == {"latency_ms": args.latency_target_ms}
            and isinstance(reward_fn, dict) and reward_fn.get("kind") == "hard"
            and isinstance(best.get("trials"), int) and best["trials"] >= args.trials
            and isinstance(best.get("arch"), str))
    return best if same else None
