"""Search against stand-alone ground truth, under a pre-registered protocol.

The protocol, ``benchmarks/protocols/search_vs_groundtruth.json`` (committed before the first
run; its commit is printed next to the result), fixes the strategies, search seeds, budget,
the shipped supernet and table (by SHA-256), the training recipe and seeds of the picks, the
test and the decision rule. Every run is checked against it (``mobile_nas.report.protocol``):
a seed, strategy or budget it does not list, another supernet or table, or a run started
before the protocol's commit is one error line (exit 2).

Phases (each resumable; several processes may run one phase at once, each claims its run):

    .venv/bin/python benchmarks/search_vs_groundtruth.py search   # ~5-10 CPU-min per search
    .venv/bin/python benchmarks/search_vs_groundtruth.py train    # ~80 CPU-s per run
    .venv/bin/python benchmarks/search_vs_groundtruth.py report

``search`` records each finished search in ``benchmarks/data/search_vs_groundtruth/`` (the
pick, its supernet score, the finalists' timing, the digests, start and end times);
``train`` appends the picks' and references' stand-alone rows to
``benchmarks/data/search_vs_groundtruth_picks`` (rows of ``fmnist28_standalone`` are reused);
``report`` writes ``benchmarks/results/search_vs_groundtruth.{json,md}`` from those committed
files alone, with "in progress" while runs are missing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from _shared import BENCHMARKS, PROTOCOLS, result_path, run_main
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.report.protocol import (
    ProtocolError,
    RegisteredProtocol,
    load_protocol,
    require_same,
    shipped_artifacts,
)
from mobile_nas.search.comparison import holm
from mobile_nas.search.strategies.reinforce import options_before_edit
from mobile_nas.space import BASELINE_ARCHS, REFERENCE_ARCHS, get_space

PROTOCOL = PROTOCOLS / "search_vs_groundtruth.json"
RUNS = BENCHMARKS / "data" / "search_vs_groundtruth"
PICKS = BENCHMARKS / "data" / "search_vs_groundtruth_picks"
GROUND_TRUTH = BENCHMARKS / "data" / "fmnist28_standalone"
OUT = result_path("search_vs_groundtruth")
DIGESTS = ("supernet_sha256", "table_sha256")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def reference_arch(name: str) -> str:
    """The arch string of a reference or baseline name."""
    return (REFERENCE_ARCHS if name in REFERENCE_ARCHS else BASELINE_ARCHS).get(name).arch


# -- phase 1: searches -----------------------------------------------------------------------
def search(args, reg: RegisteredProtocol) -> None:
    from mobile_nas.search.runner import SearchConfig, run_search

    p = reg.protocol
    strategies = args.strategies or p.strategies
    seeds = args.seeds or p.seeds["search"]
    budget = p.budgets[0]
    for strategy in strategies:
        if strategy not in p.strategies:
            raise ProtocolError(f"strategy {strategy!r} is outside protocol {reg.path.name} "
                                f"(allowed: {p.strategies})")
    for seed in seeds:
        reg.check_run(seeds={"search": seed}, budget=budget, started_at=now())
    for strategy in strategies:  # rl first: its picks also feed e2e_fmnist's selection
        for seed in seeds:
            name = f"{strategy}_s{seed}"
            run_dir = Path(args.work) / name
            if (RUNS / f"{name}.json").is_file() or not _claim(run_dir):
                continue
            start_path = run_dir / "started.json"
            if not start_path.is_file():
                atomic_write_json(start_path, {"started_at": now()})
            started = json.loads(start_path.read_text())["started_at"]
            artifacts = shipped_artifacts(p.space)
            reg.check_run(seeds={"search": seed}, budget=budget, started_at=started,
                          artifacts=artifacts, what=name)
            print(f"== {name} -> {run_dir}", file=sys.stderr, flush=True)
            result = run_search(SearchConfig(
                space=p.space, strategy=strategy, trials=budget, out_dir=str(run_dir),
                latency_target=p.latency_target, resume=True, seed=seed, threads=1,
                progress=False,
                # the protocol was fixed when rl drew every proposal from its LSTM
                strategy_options=options_before_edit(strategy, {})))
            if shipped_artifacts(p.space) != artifacts:
                raise ProtocolError(f"{name}: the shipped supernet or table changed during the "
                                    f"run; its result is not recorded")
            best = json.loads((run_dir / "best.json").read_text())
            record = {"strategy": strategy, "search_seed": seed, "budget": budget,
                      "started_at": started, "finished_at": now(),
                      "supernet_sha256": artifacts["supernet"],
                      "table_sha256": artifacts["table"],
                      "pick": best["arch"], "supernet_accuracy": best["accuracy"],
                      "predicted_ms": best["latency_ms"], "feasible": best["feasible"],
                      "predicted_best": best.get("predicted_best", {}).get("arch"),
                      "verified": best.get("verified"), "trials": result.trials,
                      "skipped": result.skipped, "wall_s": result.seconds,
                      "load_average": os.getloadavg()[0]}
            RUNS.mkdir(parents=True, exist_ok=True)
            atomic_write_json(RUNS / f"{name}.json", record)
            print(f"   pick {best['arch']} ({100 * best['accuracy']:.2f}% supernet), "
                  f"{result.seconds:.0f} s", file=sys.stderr, flush=True)


def _claim(run_dir: Path) -> bool:
    """True when this process may run ``run_dir`` (no other live process owns it)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    owner = run_dir / ".owner"
    try:
        pid = int(owner.read_text())
        if pid != os.getpid():
            os.kill(pid, 0)
            return False
    except (OSError, ValueError):
        pass  # no owner, or a dead one
    owner.write_text(str(os.getpid()))
    return int(owner.read_text()) == os.getpid()


def load_runs(reg: RegisteredProtocol) -> dict[str, dict]:
    """Every recorded search, each checked against the protocol; one supernet and table."""
    runs = {}
    for path in sorted(RUNS.glob("*.json")) if RUNS.is_dir() else []:
        rec = json.loads(path.read_text())
        if rec["strategy"] not in reg.protocol.strategies:
            raise ProtocolError(f"{path.name}: strategy {rec['strategy']!r} is outside "
                                f"protocol {reg.path.name}")
        reg.check_run(seeds={"search": rec["search_seed"]}, budget=rec["budget"],
                      started_at=rec["started_at"], what=path.name,
                      artifacts={"supernet": rec["supernet_sha256"],
                                 "table": rec["table_sha256"]})
        runs[path.stem] = rec
    require_same(runs, DIGESTS)
    return runs


# -- phase 2: stand-alone training of the picks and references --------------------------------
def to_train(reg: RegisteredProtocol, runs: dict[str, dict]) -> list[tuple[str, str]]:
    """(role, arch string) to train alone, in order: rl picks, references, other picks."""
    p = reg.protocol
    order = sorted(runs.values(), key=lambda r: (r["strategy"] != "rl", r["search_seed"]))
    todo = [("pick", r["pick"]) for r in order if r["strategy"] == "rl"]
    todo += [(f"reference:{n}", reference_arch(n)) for n in p.references]
    todo += [("pick", r["pick"]) for r in order if r["strategy"] != "rl"]
    seen, out = set(), []
    for role, arch in todo:
        if arch not in seen:
            seen.add(arch)
            out.append((role, arch))
    return out


def train(args, reg: RegisteredProtocol) -> None:
    import torch
    from build_groundtruth import claim, claim_path

    from mobile_nas.cost.latency import LatencyPredictor, LatencyTable, shipped_table_path
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.groundtruth import (
        append_row,
        load_ground_truth,
        make_header,
        paths_of,
        train_row,
        write_header,
    )

    torch.set_num_threads(1)
    p = reg.protocol
    space = get_space(p.space)
    gt = load_ground_truth(GROUND_TRUTH, space)
    if gt.recipe.recipe_id != p.recipe["ground_truth_recipe_id"]:
        raise ProtocolError(f"{GROUND_TRUTH.name} has recipe {gt.recipe.recipe_id}, not the "
                            f"protocol's {p.recipe['ground_truth_recipe_id']}")
    write_header(PICKS, make_header(
        space, gt.recipe, selection={"picks_of": f"{reg.path.name} at {reg.commit}"},
        command="python benchmarks/search_vs_groundtruth.py train", created=now()))
    runs = load_runs(reg)
    predictor = LatencyPredictor(LatencyTable.load(shipped_table_path(p.space)))
    dataset = None
    claims = paths_of(PICKS)[1].with_name(f".{PICKS.name}.claims")
    for role, arch_text in to_train(reg, runs):
        for seed in p.seeds["training"]:
            if (arch_text, seed) in trained(gt):
                continue
            if not claim(claims, arch_text, seed):
                continue
            try:
                dataset = dataset or load_dataset(gt.recipe.dataset, seed=gt.recipe.split_seed,
                                                  val_size=gt.recipe.val_images)
                arch = space.decode(arch_text)
                row = train_row(arch, role=role, seed=seed, recipe=gt.recipe, dataset=dataset,
                                predicted_ms=predictor.predict_ms(arch))
                append_row(PICKS, row)
            finally:
                claim_path(claims, arch_text, seed).unlink(missing_ok=True)
            print(f"{role:40s} seed {seed}  val {100 * row.val_accuracy:.2f}%  "
                  f"{row.train_seconds:.0f} s  {arch_text}", file=sys.stderr, flush=True)


def trained(gt) -> dict[tuple[str, int], object]:
    """(arch, seed) -> row: the ground truth's rows and this benchmark's own."""
    from mobile_nas.train.groundtruth import load_ground_truth, paths_of

    rows = {(r.arch, r.seed): r for r in gt.rows}
    if paths_of(PICKS)[1].is_file():
        rows.update({(r.arch, r.seed): r for r in load_ground_truth(
            PICKS, recipe=gt.recipe).rows})
    return rows


def check_rows(reg: RegisteredProtocol, gt) -> None:
    """Rows of this benchmark's own file must have started after the protocol's commit."""
    from datetime import timedelta

    from mobile_nas.train.groundtruth import load_ground_truth, paths_of

    if not paths_of(PICKS)[1].is_file():
        return
    for r in load_ground_truth(PICKS, recipe=gt.recipe).rows:
        started = datetime.fromisoformat(r.finished_at) - timedelta(seconds=r.train_seconds)
        reg.check_run(seeds={"training": r.seed}, started_at=started.isoformat(),
                      what=f"{PICKS.name} row {r.arch} seed {r.seed}")


# -- phase 3: report -----------------------------------------------------------------------------
def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error (SD / sqrt(n)); the error is nan below two values."""
    if not values:
        return float("nan"), float("nan")
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 \
        else float("nan")
    return float(np.mean(values)), se


def analyse(reg: RegisteredProtocol, runs: dict[str, dict], rows: dict) -> dict:
    """Scores, groups, the paired tests and the e2e candidate, from the recorded runs and the
    stand-alone rows (``rows``: (arch, seed) -> row)."""
    from scipy.stats import wilcoxon

    p = reg.protocol
    train_seeds = p.seeds["training"]

    def score(arch: str) -> dict:
        got = [rows[(arch, s)] for s in train_seeds if (arch, s) in rows]
        done = len(got) == len(train_seeds)
        return {"val_accuracy": float(np.mean([r.val_accuracy for r in got])) if done else None,
                "test_accuracy": float(np.mean([r.test_accuracy for r in got])) if done
                else None, "seeds_trained": len(got)}

    picks = []
    for name, r in sorted(runs.items(), key=lambda kv: (kv[1]["strategy"],
                                                         kv[1]["search_seed"])):
        v = r.get("verified") or {}
        chosen = next((c for c in v.get("candidates", []) if c.get("arch") == r["pick"]), {})
        picks.append({"run": name, "strategy": r["strategy"], "search_seed": r["search_seed"],
                      "arch": r["pick"], "supernet_accuracy": r["supernet_accuracy"],
                      "predicted_ms": r["predicted_ms"],
                      "measured_ratio": chosen.get("measured_ratio"),
                      "load_average": r.get("load_average"), "wall_s": r.get("wall_s"),
                      "verified": v.get("summary", v.get("skipped")), **score(r["pick"])})
    references = [{"name": n, "arch": reference_arch(n), **score(reference_arch(n))}
                  for n in p.references]
    groups = []
    for s in p.strategies:
        vals = [x["val_accuracy"] for x in picks if x["strategy"] == s
                and x["val_accuracy"] is not None]
        m, se = mean_se(vals)
        groups.append({"strategy": s, "searches": sum(x["strategy"] == s for x in picks),
                       "scored": len(vals), "val_mean": m, "val_se": se,
                       "test_mean": mean_se([x["test_accuracy"] for x in picks
                                             if x["strategy"] == s
                                             and x["test_accuracy"] is not None])[0]})
    by = {(x["strategy"], x["search_seed"]): x["val_accuracy"] for x in picks}
    seeds = p.seeds["search"]
    tests = []
    for other in (s for s in p.strategies if s != "rl"):
        pairs = [(by.get(("rl", k)), by.get((other, k))) for k in seeds]
        complete = all(a is not None and b is not None for a, b in pairs)
        t = {"a": "rl", "b": other, "pairs": sum(a is not None and b is not None
                                                 for a, b in pairs), "complete": complete}
        if complete:
            diffs = [a - b for a, b in pairs]
            t.update(mean_difference=float(np.mean(diffs)),
                     se_difference=mean_se(diffs)[1],
                     p=float(wilcoxon(diffs, alternative="greater").pvalue))
        tests.append(t)
    if all(t["complete"] for t in tests):
        for t, adj in zip(tests, holm([t["p"] for t in tests]), strict=True):
            t["p_holm"] = adj
            t["rl_ahead"] = t["mean_difference"] > 0 and adj < 0.05
    rl = [x for x in picks if x["strategy"] == "rl"]
    candidate = None
    if len(rl) == len(seeds) and all(x["val_accuracy"] is not None for x in rl):
        candidate = min(rl, key=lambda x: (-x["val_accuracy"], x["predicted_ms"]))
    distinct = {x["arch"] for x in picks} | {r["arch"] for r in references}
    return {"picks": picks, "references": references, "groups": groups, "tests": tests,
            "e2e_candidate": candidate,
            "progress": {"searches_done": len(runs),
                         "searches_planned": len(p.strategies) * len(seeds),
                         "trainings_done": sum(1 for a in distinct for s in train_seeds
                                               if (a, s) in rows),
                         "trainings_known": len(distinct) * len(train_seeds)}}


def report(args, reg: RegisteredProtocol) -> dict:
    from mobile_nas.train.groundtruth import load_ground_truth

    space = get_space(reg.protocol.space)
    gt = load_ground_truth(GROUND_TRUTH, space)
    runs = load_runs(reg)
    check_rows(reg, gt)
    result = {"schema_version": 2, "benchmark": "search_vs_groundtruth", "date": now(),
              **reg.stamp(), "protocol_doc": {k: getattr(reg.protocol, k) for k in (
                  "question", "seeds", "budgets", "strategies", "references",
                  "latency_target", "selection_rule", "statistical_test", "decision_rule")},
              "supernet_sha256": reg.protocol.artifacts["supernet"],
              "table_sha256": reg.protocol.artifacts["table"],
              **analyse(reg, runs, trained(gt)),
              "command": f"python benchmarks/search_vs_groundtruth.py "
                         f"{shlex.join(sys.argv[1:])}".strip()}
    atomic_write_json(OUT.with_suffix(".json"), result)
    atomic_write_text(OUT.with_suffix(".md"), render(result))
    print(render(result))
    return result


def _pct(v: float | None, nd: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else \
        f"{100 * v:.{nd}f}%"


def render(res: dict) -> str:
    pr, doc = res["progress"], res["protocol_doc"]
    done = (pr["searches_done"] == pr["searches_planned"]
            and pr["trainings_done"] == pr["trainings_known"])
    status = "complete" if done else (
        f"in progress: {pr['searches_done']} of {pr['searches_planned']} searches, "
        f"{pr['trainings_done']} of {pr['trainings_known']} stand-alone trainings of the "
        f"picks and references known so far")
    lines = [f"# Search against stand-alone ground truth on fmnist28 ({res['date']})", "",
             f"Protocol `benchmarks/protocols/{res['protocol']}`, commit "
             f"{res['protocol_commit'][:10]} ({res['protocol_committed_at']}), fixed before "
             f"the first run. Supernet sha256 {res['supernet_sha256'][:12]}, table sha256 "
             f"{res['table_sha256'][:12]}. Status: **{status}**.", "",
             f"Question: {doc['question']}", "", "## Result", ""]
    for g in res["groups"]:
        lines.append(f"- {g['strategy']}: {g['scored']} of {g['searches']} searches' picks "
                     f"scored; mean stand-alone validation accuracy "
                     f"{_pct(g['val_mean'])} ± {_pct(g['val_se'])} (SE).")
    for t in res["tests"]:
        if not t["complete"]:
            lines.append(f"- rl > {t['b']}: pending ({t['pairs']} of "
                         f"{len(doc['seeds']['search'])} search seeds have both picks scored).")
            continue
        verdict = "rl is ahead" if t.get("rl_ahead") else \
            f"**rl is not ahead of {t['b']}**"
        lines.append(f"- rl > {t['b']}, paired by search seed: mean difference "
                     f"{100 * t['mean_difference']:+.2f} ± {100 * t['se_difference']:.2f} "
                     f"points (SE), one-sided Wilcoxon p = {t['p']:.3f}, Holm p = "
                     f"{t['p_holm']:.3f}: {verdict}.")
    c = res.get("e2e_candidate")
    lines.append("- The e2e_fmnist candidate (the rl pick with the best stand-alone "
                 "validation accuracy): " + (
                     f"search seed {c['search_seed']}, {_pct(c['val_accuracy'])}: "
                     f"`{c['arch']}`." if c else "pending (every rl pick must be trained "
                                                 "with both seeds first)."))
    lines += ["", "## References (same recipe, mean over the training seeds)", "",
              "| reference | val acc | test acc | seeds trained | arch |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {_pct(r['val_accuracy'])} | {_pct(r['test_accuracy'])} | "
              f"{r['seeds_trained']} | `{r['arch']}` |" for r in res["references"]]
    lines += ["", "## Picks", "",
              "| strategy | search seed | supernet acc | val acc | test acc | seeds trained | "
              "predicted ms | measured ratio | load | arch |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for x in res["picks"]:
        ratio = "-" if x["measured_ratio"] is None else f"{x['measured_ratio']:.3f}"
        load = "-" if x.get("load_average") is None else f"{x['load_average']:.1f}"
        lines.append(f"| {x['strategy']} | {x['search_seed']} | "
                     f"{_pct(x['supernet_accuracy'], 1)} | {_pct(x['val_accuracy'])} | "
                     f"{_pct(x['test_accuracy'])} | {x['seeds_trained']} | "
                     f"{x['predicted_ms']:.3f} | {ratio} | {load} | `{x['arch']}` |")
    lines += ["", "## Protocol", "", f"- Selection: {doc['selection_rule']}",
              f"- Test: {doc['statistical_test']}", f"- Decision: {doc['decision_rule']}", "",
              "Measured ratio: the pick's latency over fmnist28_mnasnet's in the search's own "
              "finalist timing (median of 3 interleaved runs on the machine the search ran "
              "on); load: the one-minute load average when the search ended (on the 2-core "
              "machine, above about 1 means other work shared it during the finalist "
              "timing). Test accuracy is reported only. The 2026-11-30 page this replaces (5 "
              "search seeds, the previous supernet) is in git history.", "",
              f"Command: `{res['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", choices=("search", "train", "report"))
    p.add_argument("--strategies", nargs="+", help="a subset of the protocol's (default: all)")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="a subset of the protocol's search seeds (default: all)")
    p.add_argument("--work", default="runs/search_vs_groundtruth",
                   help="search run folders (studies, trials)")
    args = p.parse_args(argv)
    return run_main(lambda: _phase(args))


def _phase(args: argparse.Namespace) -> None:
    {"search": search, "train": train, "report": report}[args.phase](args, load_protocol(PROTOCOL))


if __name__ == "__main__":
    sys.exit(main())
