"""Latency-constrained search on NAS-Bench-201 with a real phone's latency, every strategy.

Superseded by ``benchmarks/nb201_protocol.py`` (issue 16: held-out reporting settings, equal
tuning effort, regret per query and per distinct architecture, hypervolume fractions); kept
because ``benchmarks/results/nb201_search.md`` and the ``rl`` defaults' history refer to it.

Accuracy: NAS-Bench-201's CIFAR-10 test accuracy (200 epochs, mean over seeds); latency:
HW-NAS-Bench's measured Pixel 3 latency (via HELP) — both from ``../shared/data/nb201``
(see its SOURCE.md; the data is read, never copied). Target = the median latency of all
15,625 cells, so half of the space is feasible; the exact constrained optimum comes from
the table, so the regret of every run is exact.

Each (strategy, seed) runs ``mobile-nas search``'s own code path (``run_search`` with the
tabular evaluator and an in-memory Optuna study, reward ``--reward``) for the largest
budget; the best *feasible* accuracy after the first ``b`` queries gives every budget
(strategies do not know the budget). Runs are interleaved (seed-major) and resumable
(``<work>/state.json``). Results: ``benchmarks/results/nb201_search.{json,md,png}``.

Run: ``python benchmarks/nb201_search.py`` (about 15 minutes on a 2-core VM).
Variants: ``--variant rl_lr0.1=rl:{"lr":0.1}`` adds a strategy with options.
Tuning on a setting other than the reported one (how the ``rl`` defaults were chosen):
``--device raspi4 --column cifar100_test --seed-offset 100 --out /tmp/tune``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _shared import REPO, machine_facts, result_path
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.search.runner import SearchConfig, run_search
from mobile_nas.search.sampler import strategy_names
from mobile_nas.search.strategies.reinforce import options_before_edit
from mobile_nas.search.table_evaluator import TabularBenchmark
from mobile_nas.space import get_space


def _register_norepeat_rl() -> None:
    """``rl_norepeat`` (benchmark-only variant): the ``rl`` controller, but ``ask`` resamples
    (up to 100 times) instead of re-proposing an architecture already asked or told, so no
    query is spent twice on a deterministic table. The policy update is unchanged."""
    from mobile_nas.search.strategies.reinforce import RLController
    from mobile_nas.search.strategy import STRATEGIES, register_strategy

    if "rl_norepeat" in STRATEGIES:
        return

    @register_strategy
    class NoRepeatRL(RLController):
        name = "rl_norepeat"

        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            self.seen: set[str] = set()

        def ask(self):
            for _ in range(100):
                arch = super().ask()
                if arch.to_string() not in self.seen:
                    break
            self.seen.add(arch.to_string())
            return arch

        def tell(self, arch, reward: float) -> None:
            self.seen.add(arch.to_string())
            super().tell(arch, reward)

        def state_dict(self):
            return {**super().state_dict(), "seen": sorted(self.seen)}

        def load_state_dict(self, state) -> None:
            state = dict(state)
            self.seen = set(state.pop("seen", []))
            super().load_state_dict(state)
RL_DEFAULTS_NOTE = """
## How the `rl` defaults were chosen (not on this table's setting)

The default update, `update="elite"` with `elite_fraction=0.05` (maximum likelihood on the best
5% of every architecture told so far: priority-queue training, close to the cross-entropy
method; measured below under its earlier name, risk-seeking with `risk_scope="history"`,
`risk_quantile=0.05`), and the rest unchanged (batches of 10, Adam lr 0.05, 4 clipped steps
per update, entropy 0.002, no repeated queries) were picked on three *other*
settings, seeds 100-119 (never seeds 0-19), each with the median latency of its device as
target and the hard reward: Pixel 3 / CIFAR-10 (this space and target, other seeds),
Raspberry Pi 4 / CIFAR-100 and Pixel 2 / ImageNet16-120. Criterion: mean regret at 150
queries, averaged over the three settings (lower is better; scope = `risk_scope`: the elite of
each batch or of the whole history, q = `risk_quantile`, the elite fraction). The runs used
direct ask/tell
on the table (the same reward, budgets and seeds as this script; it gave this script's exact
numbers for the old defaults on seeds 0-4); `--device/--column/--seed-offset` reproduce them
here. All rows draw the no-repeat candidates 10 at a time (same distribution as before).

| rl options vs old defaults | Pixel3 CIFAR-10 | RPi4 CIFAR-100 | Pixel2 ImageNet16 | mean |
| --- | --- | --- | --- | --- |
| none (scope batch, q 0.1) | 0.576 ± 0.088 | 1.968 ± 0.128 | 1.684 ± 0.122 | 1.410 |
| `lr` 0.1 | 0.619 ± 0.086 | 1.961 ± 0.196 | 1.460 ± 0.149 | 1.346 |
| `lr` 0.02 | 0.473 ± 0.088 | 1.867 ± 0.157 | 1.262 ± 0.183 | 1.201 |
| batch 5, q 0.2 | 0.577 ± 0.083 | 1.949 ± 0.164 | 1.608 ± 0.220 | 1.378 |
| `ppo_epochs` 8 | 0.564 ± 0.082 | 2.074 ± 0.142 | 1.623 ± 0.192 | 1.420 |
| `entropy_coef` 0.01 | 0.497 ± 0.071 | 1.668 ± 0.124 | 1.557 ± 0.210 | 1.241 |
| scope history (q 0.1) | 0.755 ± 0.102 | 1.584 ± 0.178 | 1.322 ± 0.159 | 1.220 |
| **scope history, q 0.05 (new)** | 0.516 ± 0.082 | 1.575 ± 0.156 | 1.405 ± 0.200 | 1.165 |
| scope history, q 0.03 | 0.543 ± 0.099 | 1.736 ± 0.114 | 1.159 ± 0.159 | 1.146 |
| scope history, q 0.05, lr 0.02 | 0.525 ± 0.083 | 1.458 ± 0.176 | 1.529 ± 0.138 | 1.171 |
| scope history, q 0.05, batch 5 | 0.479 ± 0.089 | 1.784 ± 0.165 | 1.341 ± 0.144 | 1.202 |

Training on a 3-5% elite of the whole history was the only change better than the old
defaults on all three settings; 0.05 was kept over 0.03 (mean 1.146, within noise) because it
is better on two of the three settings and sits inside the 0.03-0.1 plateau rather than at its
edge. Standard errors are 0.08-0.2 points per setting, so the ranking among the top rows is
not significant; learning-rate, batch-size, PPO-epoch and entropy changes alone did not help
consistently and were not adopted. `rl_batchrisk`, where present above, is the old rule (the
10% elite of each batch, with the new sampler), measured before that option was removed.
"""
DEFAULT_DATA = REPO.parent / "shared" / "data" / "nb201"


def _variants(args) -> dict[str, tuple[str, dict]]:
    default = [n for n in strategy_names() if n != "rl_norepeat"]
    out = {name: (name, {}) for name in (args.strategies or default)}
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        strategy, _, options = rest.partition(":")
        out[name] = (strategy, json.loads(options) if options else {})
    return out


def _curve(trials: list[dict], budgets: list[int]) -> dict[str, float | None]:
    best, out, i = None, {}, 0
    for b in budgets:
        for t in trials[i:b]:
            if t["feasible"] and (best is None or t["accuracy"] > best):
                best = t["accuracy"]
        i = b
        out[str(b)] = best
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--device", default="pixel3")
    p.add_argument("--column", default="cifar10_test")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--seed-offset", type=int, default=0,
                   help="seeds are offset..offset+seeds-1 (tune on other seeds than 0..19)")
    p.add_argument("--budgets", default="50,100,150,200,300")
    p.add_argument("--reward", default="hard", choices=("soft", "hard", "absolute"))
    p.add_argument("--strategies", nargs="*", help="default: every registered strategy")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=STRATEGY:JSON")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "nb201_search"))
    p.add_argument("--out", default=str(result_path("nb201_search")))
    args = p.parse_args(argv)
    _register_norepeat_rl()

    data = Path(args.data)
    if not (data / "accuracy.csv").is_file():
        print(f"NAS-Bench-201 data not found in {data} (see the issue: ../shared/data/nb201)",
              file=sys.stderr)
        return 2
    budgets = sorted(int(b) for b in args.budgets.split(","))
    space = get_space("nb201")
    bench = TabularBenchmark.from_csv(space=space, accuracy_csv=data / "accuracy.csv",
                                      latency_csv=data / f"latency_{args.device}.csv",
                                      accuracy_column=args.column)
    target = float(statistics.median(bench.latency.values()))
    opt_arch, opt_acc = bench.constrained_optimum(target)
    variants = _variants(args)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "state.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
    key = f"{args.device}:{args.column}:{args.reward}:{max(budgets)}"
    if state.get("key") != key:
        state = {"key": key, "runs": {}}
    evaluator = bench.evaluator()
    for seed in seeds:
        for name, (strategy, options) in variants.items():
            run_key = f"{name}:{seed}"
            if run_key in state["runs"]:
                continue
            trials: list[dict] = []
            t0 = time.time()
            with tempfile.TemporaryDirectory(dir=work) as run_dir:  # fresh strategy state
                config = SearchConfig(space="nb201", strategy=strategy, trials=max(budgets),
                                      out_dir=run_dir, latency_target_ms=target,
                                      reward=args.reward, storage="memory", seed=seed,
                                      strategy_options=options_before_edit(strategy,
                                                                           options),
                                      progress=False,
                                      skip_margin=None)  # every query is a table lookup
                run_search(config, evaluator=evaluator, latency_fn=bench.latency_ms,
                           on_trial=trials.append)
            trials.sort(key=lambda t: t["number"])
            state["runs"][run_key] = {
                "best_feasible": _curve(trials, budgets),
                "unique_archs": {str(b): len({t["arch"] for t in trials[:b]}) for b in budgets},
                "seconds": round(time.time() - t0, 2)}
            atomic_write_json(state_path, state, indent=None)
            acc = state["runs"][run_key]["best_feasible"][str(max(budgets))]
            print(f"seed {seed:2d} {name:<12} best feasible {acc} "
                  f"({time.time() - t0:.1f} s)", flush=True)

    summary = _summarize(state["runs"], variants, budgets, seeds, opt_acc)
    result = {
        "schema_version": 1, "benchmark": "nb201_search",
        "data": {"source": str(data), "accuracy": args.column, "device": args.device,
                 "archs": len(bench)},
        "target_ms": target, "optimum": {"arch": opt_arch, "accuracy": opt_acc,
                                         "latency_ms": bench.latency[opt_arch]},
        "reward": args.reward, "seeds": args.seeds, "seed_offset": args.seed_offset,
        "budgets": budgets,
        "variants": {n: {"strategy": s, "options": o} for n, (s, o) in variants.items()},
        "machine": machine_facts("cpu", "python"),
        "summary": summary, "runs": state["runs"]}
    atomic_write_json(args.out + ".json", result)
    _plot(summary, budgets, args.out + ".png")
    atomic_write_text(args.out + ".md", _markdown(result))
    print(_markdown(result))
    return 0


def _summarize(runs, variants, budgets, seeds, opt_acc) -> dict:
    from scipy.stats import mannwhitneyu

    out: dict = {}
    for name in variants:
        out[name] = {}
        for b in budgets:
            accs = [runs[f"{name}:{s}"]["best_feasible"][str(b)] for s in seeds]
            found = [a for a in accs if a is not None]
            regret = [100 * (opt_acc - (a if a is not None else 0.0)) for a in accs]
            uniq = [runs[f"{name}:{s}"]["unique_archs"][str(b)] for s in seeds]
            out[name][str(b)] = {
                "mean_best_feasible_acc": 100 * float(np.mean(found)) if found else None,
                "mean_regret_pp": float(np.mean(regret)),
                "se_regret_pp": float(np.std(regret, ddof=1) / np.sqrt(len(regret))),
                "median_regret_pp": float(np.median(regret)),
                "hit_optimum": sum(r < 1e-9 for r in regret),
                "no_feasible": len(accs) - len(found),
                "mean_unique_archs": float(np.mean(uniq)),
                "regrets_pp": regret}
    if "rl" in variants:
        for b in budgets:
            rl = out["rl"][str(b)]["regrets_pp"]
            for other in variants:
                if other != "rl":
                    p_less = mannwhitneyu(rl, out[other][str(b)]["regrets_pp"],
                                          alternative="less").pvalue
                    out["rl"][str(b)].setdefault("p_rl_regret_lower_than", {})[other] = \
                        float(p_less)
    return out


def _plot(summary, budgets, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, per in summary.items():
        m = [per[str(b)]["mean_regret_pp"] for b in budgets]
        se = [per[str(b)]["se_regret_pp"] for b in budgets]
        ax.errorbar(budgets, m, yerr=se, marker="o", capsize=3, label=name)
    ax.set_xlabel("queries")
    ax.set_ylabel("mean regret (accuracy points)")
    ax.set_yscale("log")
    ax.set_title("NAS-Bench-201, Pixel 3 latency <= median")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    from mobile_nas.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def _markdown(r: dict) -> str:
    budgets = r["budgets"]
    o = r["optimum"]
    lines = [
        "# Constrained search on NAS-Bench-201 (Pixel 3 latency)",
        "",
        f"Machine: {r['machine']['cpu']} (2-core shared VM). Data: {r['data']['archs']} "
        f"NAS-Bench-201 cells, accuracy = `{r['data']['accuracy']}` (200-epoch CIFAR-10 test, "
        f"NB201), latency = measured on `{r['data']['device']}` (HW-NAS-Bench via HELP).",
        f"Target: latency <= {r['target_ms']:.4f} ms (the median). Exact constrained optimum: "
        f"{100 * o['accuracy']:.4f}% at {o['latency_ms']:.3f} ms, `{o['arch']}`.",
        f"Reward: MnasNet `{r['reward']}`; {r['seeds']} seeds per strategy (seeds "
        f"{r.get('seed_offset', 0)}-{r.get('seed_offset', 0) + r['seeds'] - 1}); a query is "
        "one trial (repeated architectures count).",
        "",
        "Strategies: " + ", ".join(
            f"`{n}`" + (f" (= `{v['strategy']}` with {json.dumps(v['options'])})"
                        if v["options"] or v["strategy"] != n else "")
            for n, v in r["variants"].items()) + "." + (
            " `rl` is the LSTM controller with its default update, `elite`: maximum "
            "likelihood on the best 5% of every architecture told so far (priority-queue "
            "training); `update` `reinforce` and `ppo` train it by policy gradients."
            if "rl" in r["variants"] else "") + (
            " `rl_norepeat` is a benchmark-only variant defined in this script (the `rl` "
            "controller re-sampling instead of re-proposing an architecture it has already "
            "seen)." if "rl_norepeat" in r["variants"] else ""),
        "",
        "Mean regret to the constrained optimum, accuracy points (± standard error); "
        "lower is better:",
        "",
        "| strategy | " + " | ".join(f"{b} queries" for b in budgets) + " |",
        "| --- |" + " --- |" * len(budgets),
    ]
    for name, per in r["summary"].items():
        lines.append(f"| {name} | " + " | ".join(
            f"{per[str(b)]['mean_regret_pp']:.3f} ± {per[str(b)]['se_regret_pp']:.3f}"
            for b in budgets) + " |")
    lines += ["", "Mean best feasible accuracy (%) / runs that found the exact optimum / mean "
                  "distinct architectures among the queries:", "",
              "| strategy | " + " | ".join(f"{b}" for b in budgets) + " |",
              "| --- |" + " --- |" * len(budgets)]
    for name, per in r["summary"].items():
        cells = []
        for b in budgets:
            s = per[str(b)]
            acc = "n/a" if s["mean_best_feasible_acc"] is None else \
                f"{s['mean_best_feasible_acc']:.3f}"
            cells.append(f"{acc} / {s['hit_optimum']} / {s['mean_unique_archs']:.0f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if "rl" in r["summary"]:
        lines += ["", "One-sided Mann-Whitney U p-value that RL's regret is lower, at 150 "
                      "queries:" if "150" in r["summary"]["rl"] else ""]
        ps = r["summary"]["rl"].get("150", {}).get("p_rl_regret_lower_than", {})
        lines += [", ".join(f"vs {k}: p={v:.3f}" for k, v in ps.items())]
    lines += ["", "Lowest mean regret per budget: " + ", ".join(
        f"{b}: `{min(r['summary'], key=lambda n: r['summary'][n][str(b)]['mean_regret_pp'])}`"
        for b in budgets) + "."]
    lines += ["", RL_DEFAULTS_NOTE.strip(), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
