"""Search efficiency and throughput: every strategy, several seeds, the same budget, the same
frozen supernet (fmnist28, Fashion-MNIST validation split, shipped latency table).

Part 1 (supernet): each strategy x seed runs ``--trials`` trials through ``run_search`` on an
in-memory study; accuracies come from one frozen supernet and are cached per architecture
(shared by all runs, stored in ``--cache``), so every strategy sees exactly the same scores.
Part 2 (surrogate, for budgets of hundreds of trials that the shared 2-core machine cannot
afford with the supernet): a ridge regression on one-hot decisions fitted to every cached
supernet score stands in for the supernet; it also tunes the RL controller's settings.
Curves: best feasible accuracy and hypervolume of (accuracy, latency) against trials.

Every result file records the SHA-256 of the supernet and latency table it was made with; the
score cache and the markdown refuse to mix parts made with different ones (one error line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _shared import RESULTS, machine_facts, run_main
from mobile_nas.atomic import atomic_write_json
from mobile_nas.report.protocol import (
    file_sha256,
    require_same,
    shipped_artifacts,
)
from mobile_nas.search.evaluator import Evaluator, TableEvaluator
from mobile_nas.search.pareto import hypervolume_2d
from mobile_nas.search.runner import SearchConfig, run_search
from mobile_nas.search.strategies.reinforce import options_before_edit
from mobile_nas.space import get_space

STRATEGIES = {"rl": ("rl", {}), "random": ("random", {}), "evolution": ("evolution", {}),
              "tpe": ("tpe", {}), "nsga2": ("nsga2", {})}
RL_VARIANTS = {  # the default update, then the others for comparison
    "rl (default: elite, max. likelihood on the best 5% of the history)": {},
    "rl elite, one unclipped step per update": {"ppo_epochs": 0},
    "rl ppo (moving-average baseline, batch 16)": {"update": "ppo", "no_repeat": False,
                                                   "batch_size": 16},
    "rl reinforce (moving-average baseline)": {"update": "reinforce"},
}


class CountingEvaluator(Evaluator):
    """Wraps an evaluator; counts calls and the time they take (throughput)."""

    def __init__(self, inner: Evaluator) -> None:
        super().__init__(space=inner.space)
        self.inner, self.calls, self.seconds = inner, 0, 0.0

    def evaluate(self, arch):
        t0 = time.perf_counter()
        acc = self.inner.evaluate(arch)
        self.calls += 1
        self.seconds += time.perf_counter() - t0
        return acc


class RidgeSurrogate(Evaluator):
    """Accuracy ≈ ridge regression on the one-hot encoding of every decision."""

    def __init__(self, *, space, table: dict[str, float], l2: float = 1.0, seed: int = 0):
        super().__init__(space=space)
        keys = sorted(table)
        x = np.stack([self._x(space.decode(k)) for k in keys])
        y = np.array([table[k] for k in keys])
        perm = np.random.default_rng(seed).permutation(len(keys))
        cut = int(0.8 * len(keys))
        self.r2_holdout = self._fit(x[perm[:cut]], y[perm[:cut]], l2, x[perm[cut:]],
                                    y[perm[cut:]])
        self._fit(x, y, l2)

    def _x(self, arch) -> np.ndarray:
        parts = []
        for d, i in zip(self.space.decisions, arch.indices(), strict=True):
            v = np.zeros(len(d))
            v[i] = 1.0
            parts.append(v)
        return np.concatenate(parts + [np.ones(1)])

    def _fit(self, x, y, l2, xt=None, yt=None) -> float:
        self.w = np.linalg.solve(x.T @ x + l2 * np.eye(x.shape[1]), x.T @ y)
        if xt is None:
            return float("nan")
        pred = xt @ self.w
        return float(1 - ((pred - yt) ** 2).sum() / ((yt - yt.mean()) ** 2).sum())

    def evaluate(self, arch) -> float:
        return float(np.clip(self._x(arch) @ self.w, 0.0, 1.0))


def curves(records, target_ms: float, ref_ms: float) -> dict[str, list[float]]:
    best, hv, acc, lat = [], [], [], []
    cur = 0.0
    for r in records:
        if r["latency_ms"] <= target_ms:
            cur = max(cur, r["accuracy"])
        best.append(cur)
        acc.append(r["accuracy"])
        lat.append(r["latency_ms"])
        hv.append(hypervolume_2d(acc, lat, ref_latency_ms=ref_ms))
    return {"best_feasible_accuracy": best, "hypervolume": hv}


def run_one(space, strategy, options, seed, trials, evaluator, latency_fn, target_ms, ref_ms):
    cfg = SearchConfig(space=space.name, strategy=strategy, trials=trials, out_dir="/tmp/_eff",
                       storage="memory", seed=seed, latency_target_ms=target_ms,
                       progress=False, strategy_options=options_before_edit(strategy, options),
                       # the protocol of the recorded results: MnasNet soft reward, every
                       # candidate evaluated (before search skipped far-off candidates)
                       reward="soft", skip_margin=None)
    recs = []
    run_search(cfg, evaluator=evaluator, latency_fn=latency_fn,
               on_trial=lambda r: recs.append(r))
    return curves(recs, target_ms, ref_ms)


def experiment(space, names: dict, seeds, trials, evaluator, latency_fn, target_ms, ref_ms,
               on_done=None) -> dict:
    out: dict[str, list] = {n: [] for n in names}
    for seed in seeds:  # interleaved: every strategy at a seed before the next seed
        for name, (strategy, options) in names.items():
            t0 = time.time()
            c = run_one(space, strategy, options, seed, trials, evaluator, latency_fn,
                        target_ms, ref_ms)
            c["seconds"] = time.time() - t0
            out[name].append(c)
            print(f"{name:40s} seed {seed}: best feasible "
                  f"{100 * c['best_feasible_accuracy'][-1]:.2f}%  hv "
                  f"{c['hypervolume'][-1]:.4f}  ({c['seconds']:.0f} s)", flush=True)
            if on_done:
                on_done()
    return out


def summarize(runs: dict) -> dict:
    summary = {}
    for name, rs in runs.items():
        best = np.array([r["best_feasible_accuracy"] for r in rs])
        hv = np.array([r["hypervolume"] for r in rs])
        n = best.shape[1]
        marks = sorted({max(1, n // 4), max(1, n // 2), n})
        summary[name] = {
            "seeds": len(rs),
            **{f"best_feasible_accuracy_median@{m}": float(np.median(best[:, m - 1]))
               for m in marks},
            "best_feasible_accuracy_mean": float(best[:, -1].mean()),
            "best_feasible_accuracy_std": float(best[:, -1].std()),
            "hypervolume_median": float(np.median(hv[:, -1])),
            "hypervolume_mean": float(hv[:, -1].mean()),
            "auc_best_feasible_mean": float(best.mean()),
        }
    return summary


def plot(runs: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    for name, rs in runs.items():
        for ax, key in zip(axes, ("best_feasible_accuracy", "hypervolume"), strict=True):
            a = np.array([r[key] for r in rs])
            x = np.arange(1, a.shape[1] + 1)
            med = np.median(a, 0)
            ax.plot(x, 100 * med if key.startswith("best") else med, label=name, lw=1.4)
            lo, hi = np.percentile(a, 25, 0), np.percentile(a, 75, 0)
            s = 100 if key.startswith("best") else 1
            ax.fill_between(x, s * lo, s * hi, alpha=0.12)
    axes[0].set_ylabel("best feasible val accuracy (%), median of seeds")
    axes[1].set_ylabel("hypervolume (accuracy x ms), median of seeds")
    for ax in axes:
        ax.set_xlabel("trials")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_markdown() -> None:
    """benchmarks/results/search_efficiency.md and search_throughput.md from the JSON."""
    from mobile_nas.atomic import atomic_write_text

    doc: dict = {}
    parts = {}
    for part in ("surrogate", "supernet"):  # the supernet file's header wins
        path = RESULTS / f"search_efficiency_{part}.json"
        if path.exists():
            parts[part] = json.loads(path.read_text())
            doc.update(parts[part])
    require_same(parts, DIGESTS)
    atomic_write_json(RESULTS / "search_efficiency.json", doc, indent=None)
    m = doc["machine"]
    lines = ["# Search efficiency (fmnist28, Fashion-MNIST validation split)", "",
             f"Machine: {m['cpu']}, 2-core VM shared with 3-4 other engineers' jobs (load "
             f"average 6-10 during the run), torch {torch.__version__}, "
             f"{m['torch_threads']} thread. Date {doc['date']}.",
             f"Latency: {doc['latency']} (shipped table), target "
             f"{doc['latency_target_ms']} ms (about 35% of random architectures meet it). "
             f"Hypervolume of (accuracy, latency) up to the reference (0, "
             f"{doc['hypervolume_reference']['latency_ms']} ms).",
             "Made with supernet sha256 " + (
                 f"{doc['supernet_sha256'][:12]} and table sha256 {doc['table_sha256'][:12]}."
                 if doc.get("supernet_sha256") else
                 "(not recorded: these runs predate the digests; the shipped fmnist28 table "
                 "has been rebuilt since, so a rerun today uses another one)."), ""]
    for part, title in (("supernet_part", "Frozen supernet (accuracies cached per arch)"),
                        ("surrogate_part", "Ridge surrogate of the same supernet")):
        if part not in doc:
            continue
        p = doc[part]
        lines += [f"## {title}: {p['trials']} trials x {p['seeds']} seeds", ""]
        if part == "supernet_part":
            lines += [f"Supernet: the `--preset quick` one ({doc['supernet']}), scored on "
                      f"{doc['val_images']} validation images after BN recalibration on "
                      f"{doc['calibration']}.", ""]
        else:
            lines += [f"Surrogate: ridge regression on one-hot decisions fitted to the "
                      f"{doc['surrogate']['fitted_on']} supernet scores of part 1 (held-out "
                      f"R2 {doc['surrogate']['r2_holdout']:.2f}); lets strategies run "
                      f"hundreds of trials. It is smoother than the supernet (additive in "
                      f"the decisions), which favours model-based samplers.", ""]
        summ = p["summary"]
        marks = [k for k in next(iter(summ.values())) if k.startswith("best_feasible_"
                                                                       "accuracy_median@")]
        head = " | ".join(f"best feasible acc @{k.split('@')[1]} (median)" for k in marks)
        lines += [f"| strategy | {head} | final mean ± std | hypervolume (median) | "
                  "mean best-so-far over trials |",
                  "|---|" + "---|" * (len(marks) + 3)]
        for name, r in sorted(summ.items(), key=lambda kv: -kv[1]["hypervolume_median"]):
            cells = " | ".join(f"{100 * r[k]:.2f}%" for k in marks)
            lines.append(f"| {name} | {cells} | {100 * r['best_feasible_accuracy_mean']:.2f}"
                         f" ± {100 * r['best_feasible_accuracy_std']:.2f}% | "
                         f"{r['hypervolume_median']:.4f} | "
                         f"{100 * r['auc_best_feasible_mean']:.2f}% |")
        png = "search_efficiency_supernet.png" if part == "supernet_part" else \
            "search_efficiency_surrogate.png"
        lines += ["", f"Curves: `{png}` (median of seeds, interquartile band).", ""]
    atomic_write_text(RESULTS / "search_efficiency.md", "\n".join(lines) + "\n")
    if "throughput" in doc:
        t = doc["throughput"]
        atomic_write_text(RESULTS / "search_throughput.md", "\n".join([
            "# Search throughput (fmnist28, supernet evaluator)", "",
            f"Machine: {m['cpu']}, 2-core shared VM (load average 6-10 from other jobs), "
            f"{m['torch_threads']} torch thread. Date {t['date']}.", "",
            f"**{t['archs_per_minute']:.1f} architectures per minute**: "
            f"{t['supernet_evaluations']} supernet evaluations (BN recalibration on 1 x 128 "
            f"training images + {t['settings']['val_images']} validation images each) in "
            f"{t['evaluation_seconds']:.0f} s of evaluation time, measured inside the search "
            f"efficiency runs. Cached repeats are not counted.", ""]) + "\n")


DIGESTS = ("supernet_sha256", "table_sha256")


def check_cache(cache: Path, digests: dict[str, str]) -> None:
    """The score cache belongs to one supernet and table: its digests are kept beside it,
    and a cache of other files is refused."""
    side = cache.with_name(cache.name + ".sha256.json")
    if cache.exists():
        recorded = json.loads(side.read_text()) if side.exists() else {}
        require_same({str(side): recorded, "this run": digests}, DIGESTS)
    atomic_write_json(side, digests)


def main() -> int:
    return run_main(lambda: run(sys.argv[1:]))


def run(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report-only", action="store_true",
                    help="only rewrite the markdown from results/search_efficiency.json")
    ap.add_argument("--supernet")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--surrogate-trials", type=int, default=300)
    ap.add_argument("--latency-target-ms", type=float, default=0.5)
    ap.add_argument("--ref-latency-ms", type=float, default=2.0)
    ap.add_argument("--val-images", type=int, default=500)
    ap.add_argument("--cache", default="/tmp/mnas_eff_cache.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--part", choices=("all", "supernet", "surrogate"), default="all",
                    help="run one part (the surrogate part fits on the --cache so far)")
    args = ap.parse_args(argv)
    if args.report_only:
        write_markdown()
        return
    if not args.supernet:
        ap.error("--supernet is required")
    torch.set_num_threads(args.threads)
    space = get_space("fmnist28")
    from mobile_nas.search.costs import table_latency_fn
    from mobile_nas.search.supernet_evaluator import SupernetEvaluator
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.supernet import load_supernet

    latency_fn, source = table_latency_fn(space)
    ds = load_dataset("fashion-mnist")
    sn_eval = SupernetEvaluator(supernet=load_supernet(args.supernet, space), dataset=ds,
                                calib_batches=1, calib_batch_size=128,
                                val_images=args.val_images, seed=0)
    counting = CountingEvaluator(sn_eval)
    cache = Path(args.cache)
    digests = {"supernet_sha256": file_sha256(args.supernet),
               "table_sha256": shipped_artifacts(space.name)["table"]}
    check_cache(cache, digests)
    table = TableEvaluator.load(cache, space=space, fallback=counting) if cache.exists() \
        else TableEvaluator(space=space, table={}, fallback=counting)
    seeds = list(range(args.seeds))
    t0 = time.time()
    doc = {"schema_version": 1, "benchmark": "search_efficiency", "space": space.name,
           "date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()),
           "machine": machine_facts("cpu", "cores", shared=True, torch_threads=args.threads),
           "latency": source, "latency_target_ms": args.latency_target_ms,
           "hypervolume_reference": {"accuracy": 0.0, "latency_ms": args.ref_latency_ms},
           "supernet": str(args.supernet), **digests, "val_images": args.val_images,
           "calibration": "1 x 128 train images"}
    if args.part in ("all", "supernet"):
        runs = experiment(space, STRATEGIES, seeds, args.trials, table, latency_fn,
                          args.latency_target_ms, args.ref_latency_ms,
                          on_done=lambda: table.save(cache))
        doc["supernet_part"] = {"trials": args.trials, "seeds": len(seeds),
                                "summary": summarize(runs), "runs": runs,
                                "seconds": time.time() - t0}
        plot(runs, RESULTS / "search_efficiency_supernet.png",
             f"fmnist28, frozen supernet, target {args.latency_target_ms} ms, "
             f"{len(seeds)} seeds")
        thr = {"benchmark": "search_throughput", "schema_version": 1,
               "machine": doc["machine"], "date": doc["date"],
               "supernet_evaluations": counting.calls,
               "evaluation_seconds": counting.seconds,
               "archs_per_minute": 60 * counting.calls / max(counting.seconds, 1e-9),
               "settings": {"val_images": args.val_images, "calib": "1 x 128"}}
        atomic_write_json(RESULTS / "search_throughput.json", thr)
        doc["throughput"] = thr
        atomic_write_json(RESULTS / "search_efficiency_supernet.json", doc, indent=None)
    if args.part == "supernet":
        write_markdown()
        return
    surrogate = RidgeSurrogate(space=space, table=table.table)
    doc["surrogate"] = {"fitted_on": len(table.table), "r2_holdout": surrogate.r2_holdout}
    t1 = time.time()
    names = {**{k: v for k, v in STRATEGIES.items() if k != "rl"},
             **{k: ("rl", v) for k, v in RL_VARIANTS.items()}}
    sruns = experiment(space, names, seeds, args.surrogate_trials, surrogate, latency_fn,
                       args.latency_target_ms, args.ref_latency_ms)
    doc["surrogate_part"] = {"trials": args.surrogate_trials, "seeds": len(seeds),
                             "summary": summarize(sruns), "seconds": time.time() - t1,
                             "runs": sruns}
    plot(sruns, RESULTS / "search_efficiency_surrogate.png",
         f"fmnist28, ridge surrogate of the supernet (R2 {surrogate.r2_holdout:.2f}), "
         f"target {args.latency_target_ms} ms, {len(seeds)} seeds")
    atomic_write_json(RESULTS / "search_efficiency_surrogate.json", doc, indent=None)
    print(json.dumps({k: v for k, v in doc.items() if not k.endswith("_part")}, indent=1))
    write_markdown()
    print((RESULTS / "search_efficiency.md").read_text())


if __name__ == "__main__":
    sys.exit(main())
