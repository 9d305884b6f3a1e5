"""End to end on Fashion-MNIST: the searched network against hand-designed references,
decided in advance.

The protocol, ``benchmarks/protocols/e2e_fmnist.json`` (committed before the first run; its
commit is printed next to the result), fixes the references (each pattern scaled to the demo's
target, as fast as ``fmnist28_mnasnet``, by :func:`scale_to_target`), the rule that chooses the
searched network (validation only, from the rl picks of ``search_vs_groundtruth``), the recipe
(10 epochs), the training seeds (0-5), the timing (every seed's export, interleaved, 5 runs),
the test (one-sided Welch per reference, Holm) and the goal. A run outside it (another seed,
supernet or table, or one started before the commit) is one error line (exit 2).

Phases (resumable; several ``train`` processes may share the work, each claims its run):

    .venv/bin/python benchmarks/e2e_fmnist.py train    # ~12 CPU-min per run, 24 runs
    .venv/bin/python benchmarks/e2e_fmnist.py restore  # only if a checkpoint was lost
    .venv/bin/python benchmarks/e2e_fmnist.py time     # on a quiet machine, after training
    .venv/bin/python benchmarks/e2e_fmnist.py report

``train`` records every finished run in ``benchmarks/data/e2e_fmnist/`` (accuracies, costs,
start and end, digests; checkpoints stay in ``--work``); ``time`` records the interleaved
timing there too; ``report`` writes ``benchmarks/results/e2e_fmnist.{json,md}`` from those
committed files alone, "in progress: n of N runs" until every run is in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import search_vs_groundtruth as svg

from _shared import BENCHMARKS, PROTOCOLS, machine_facts, result_path, run_main
from mobile_nas.atomic import atomic_write_json, atomic_write_text
from mobile_nas.errors import MobileNasError
from mobile_nas.report import protocol as prot
from mobile_nas.report.protocol import ProtocolError, RegisteredProtocol
from mobile_nas.space import get_space

PROTOCOL = PROTOCOLS / "e2e_fmnist.json"
RUNS = BENCHMARKS / "data" / "e2e_fmnist"
TIMING = RUNS / "timing.json"
#: Runs whose lost checkpoint was retrained for timing (``restore``), and whether it reproduced
RESTORED = BENCHMARKS / "data" / "e2e_fmnist_restored.json"
OUT = result_path("e2e_fmnist")
SEARCHED = "searched"
WIDTHS = (1.0, 0.9, 0.8, 0.75, 0.7, 0.6, 0.5)
DEPTHS = (1.0, 0.75, 0.5, 0.34)
_STAGE = re.compile(r"(?P<op>ds|mb\d+)_k(?P<k>\d+)_n(?P<n>\d+)_c(?P<c>\d+)_(?P<act>[a-z0-9]+)"
                    r"(?P<se>_se)?")


def scale_to_target(space, pattern: str, predict_ms, target_ms: float
                    ) -> tuple[float, float, str] | None:
    """``pattern`` (an arch string of a mobile ``space``) scaled as MobileNet and EfficientNet
    scale: a uniform width multiplier (:data:`WIDTHS`) and depth multiplier (:data:`DEPTHS`),
    each stage's channels the space's choice nearest width x channels (ties: the smaller), its
    layers round(depth x layers) within the space's choices. ``predict_ms(arch string)``.
    Returns (width, depth, arch string) of the largest prediction at or under ``target_ms``
    (ties: the wider), None if none fits."""
    stages = [_STAGE.fullmatch(t) for t in pattern.split("|")]
    if not all(stages):
        raise MobileNasError(f"not a mobile arch string: {pattern!r}")
    best: tuple[float, float, float, str] | None = None
    for width in WIDTHS:
        for depth in DEPTHS:
            parts = []
            for spec, st in zip(space.stages, stages, strict=True):
                want = width * int(st["c"])
                ch = min(spec.channels, key=lambda c, w=want: (abs(c - w), c))
                n = min(max(round(depth * int(st["n"])), min(spec.layers)), max(spec.layers))
                parts.append(f"{st['op']}_k{st['k']}_n{n}_c{ch}_{st['act']}{st['se'] or ''}")
            arch = "|".join(parts)
            ms = predict_ms(arch)
            if ms <= target_ms and (best is None or ms > best[0]):
                best = (ms, width, depth, arch)
    return None if best is None else best[1:]


def models_of(reg: RegisteredProtocol) -> dict[str, str | None]:
    """Model name -> arch string: the searched network (None until its rule can choose it)
    and the protocol's references (checked against the registry)."""
    out: dict[str, str | None] = {SEARCHED: searched_arch()}
    for ref in reg.protocol.references:
        if svg.reference_arch(ref["name"]) != ref["arch"]:
            raise ProtocolError(f"reference {ref['name']} is registered as "
                                f"{svg.reference_arch(ref['name'])}, the protocol says "
                                f"{ref['arch']}")
        out[ref["name"]] = ref["arch"]
    return out


def searched_arch() -> str | None:
    """The protocol's selection rule: the rl pick of search_vs_groundtruth with the best
    stand-alone validation accuracy (None while any rl pick is untrained)."""
    from mobile_nas.train.groundtruth import load_ground_truth

    reg = prot.load_protocol(svg.PROTOCOL)
    gt = load_ground_truth(svg.GROUND_TRUTH, get_space(reg.protocol.space))
    candidate = svg.analyse(reg, svg.load_runs(reg), svg.trained(gt))["e2e_candidate"]
    return None if candidate is None else candidate["arch"]


def checkpoint_path(work: Path, arch: str, seed: int, epochs: int) -> Path:
    slug = hashlib.sha1(arch.encode()).hexdigest()[:10]
    return work / f"{slug}_s{seed}_e{epochs}.pt"


def run_name(model: str, seed: int) -> str:
    return f"{model}_s{seed}"


# -- phase 1: training -----------------------------------------------------------------------
def train(args, reg: RegisteredProtocol) -> None:
    import torch

    from mobile_nas.search.costs import macs_params
    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.trainer import train_architecture

    torch.set_num_threads(1)
    p = reg.protocol
    space = get_space(p.space)
    models = models_of(reg)
    if models[SEARCHED] is None:
        print("searched: not chosen yet (every rl pick of search_vs_groundtruth must be "
              "trained with both seeds first); training the references", file=sys.stderr)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    dataset = None
    for seed in args.seeds or p.seeds["training"]:
        for model, arch_text in models.items():
            name = run_name(model, seed)
            if arch_text is None or (RUNS / f"{name}.json").is_file():
                continue
            ckpt = checkpoint_path(work, arch_text, seed, p.epochs)
            claim = ckpt.with_suffix(".claim")
            if not _claim(claim):
                continue
            try:
                start = ckpt.with_suffix(".started")
                if not start.is_file():
                    start.write_text(svg.now())
                started = start.read_text().strip()
                # training uses neither file: the digests are those that chose the models
                # (the references' scaling and, through search_vs_groundtruth's checked runs,
                # the searched network)
                artifacts = p.artifacts
                reg.check_run(seeds={"training": seed}, started_at=started, what=name)
                print(f"== {name}: {arch_text}", file=sys.stderr, flush=True)
                dataset = dataset or load_dataset("fashion-mnist", seed=0)
                arch = space.decode(arch_text)
                c0, w0 = time.process_time(), time.perf_counter()
                result = train_architecture(arch, dataset, out=ckpt, epochs=p.epochs,
                                            resume=True, progress=False, seed=seed)
                macs, params = macs_params(arch)
                m = result.metrics
                record = {"model": model, "arch": arch_text, "seed": seed,
                          "epochs": p.epochs, "started_at": started, "finished_at": svg.now(),
                          "val_accuracy": m["val_accuracy"],
                          "test_accuracy": m["test_accuracy"],
                          "train_loss": m.get("train_loss"), "macs": macs, "params": params,
                          "train_cpu_s": time.process_time() - c0,
                          "train_wall_s": time.perf_counter() - w0,
                          "load_average": os.getloadavg()[0],
                          "checkpoint": ckpt.name,
                          "supernet_sha256": artifacts["supernet"],
                          "table_sha256": artifacts["table"]}
                atomic_write_json(RUNS / f"{name}.json", record)
                print(f"   val {100 * record['val_accuracy']:.2f}%  test "
                      f"{100 * record['test_accuracy']:.2f}%  {record['train_cpu_s']:.0f} "
                      f"CPU-s", file=sys.stderr, flush=True)
            finally:
                claim.unlink(missing_ok=True)


def restore(args, reg: RegisteredProtocol) -> None:
    """Retrains every recorded run whose checkpoint is missing from ``--work`` (lost with its
    folder), with the run's architecture, seed and epochs, so that ``time`` can export it;
    the run's record is not changed. Whether the retrained accuracies reproduce the record's
    is written to :data:`RESTORED` (the report lists it)."""
    import torch

    from mobile_nas.train.data import load_dataset
    from mobile_nas.train.trainer import train_architecture

    torch.set_num_threads(1)
    space = get_space(reg.protocol.space)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    restored = json.loads(RESTORED.read_text()) if RESTORED.is_file() else {}
    dataset = None
    for name, rec in load_runs(reg).items():
        ckpt = work / rec["checkpoint"]
        if ckpt.is_file():
            continue
        print(f"== restoring {name}: {rec['arch']}", file=sys.stderr, flush=True)
        dataset = dataset or load_dataset("fashion-mnist", seed=0)
        result = train_architecture(space.decode(rec["arch"]), dataset, out=ckpt,
                                    epochs=rec["epochs"], resume=True, progress=False,
                                    seed=rec["seed"])
        m = result.metrics
        restored[name] = {"restored_at": svg.now(), "checkpoint": rec["checkpoint"],
                          "val_accuracy": m["val_accuracy"], "test_accuracy": m["test_accuracy"],
                          "recorded_val_accuracy": rec["val_accuracy"],
                          "recorded_test_accuracy": rec["test_accuracy"],
                          "reproduced": m["val_accuracy"] == rec["val_accuracy"]
                          and m["test_accuracy"] == rec["test_accuracy"]}
        atomic_write_json(RESTORED, restored)
        print(f"   val {100 * m['val_accuracy']:.2f}% (recorded "
              f"{100 * rec['val_accuracy']:.2f}%), test {100 * m['test_accuracy']:.2f}% "
              f"(recorded {100 * rec['test_accuracy']:.2f}%)", file=sys.stderr, flush=True)


def _claim(path: Path) -> bool:
    """Takes a run for this process (a claim of a dead process is taken over)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or 0), 0)
            return False
        except (ValueError, ProcessLookupError, FileNotFoundError):
            path.unlink(missing_ok=True)
            return _claim(path)
        except PermissionError:
            return False
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    return True


def load_runs(reg: RegisteredProtocol) -> dict[str, dict]:
    """Every recorded training run, each checked against the protocol; one supernet/table."""
    runs = {}
    for path in sorted(RUNS.glob("*_s*.json")) if RUNS.is_dir() else []:
        rec = json.loads(path.read_text())
        if rec["epochs"] != reg.protocol.epochs:
            raise ProtocolError(f"{path.name}: {rec['epochs']} epochs, the protocol says "
                                f"{reg.protocol.epochs}")
        reg.check_run(seeds={"training": rec["seed"]}, started_at=rec["started_at"],
                      what=path.name, artifacts={"supernet": rec["supernet_sha256"],
                                                 "table": rec["table_sha256"]})
        runs[path.stem] = rec
    prot.require_same(runs, ("supernet_sha256", "table_sha256"))
    return runs


# -- phase 2: timing (a quiet machine) ----------------------------------------------------------
def time_all(args, reg: RegisteredProtocol) -> None:
    from mobile_nas.export.deploy import time_models
    from mobile_nas.export.onnx_export import export_onnx
    from mobile_nas.export.verify import check_onnx
    from mobile_nas.train.checkpoint import load_checkpoint

    p, t = reg.protocol, reg.protocol.timing
    runs = load_runs(reg)
    planned = len(models_of(reg)) * len(p.seeds["training"])
    if len(runs) < planned:
        raise MobileNasError(f"{len(runs)} of {planned} runs are trained: time them all at "
                             f"once, after the train phase")
    started = svg.now()
    reg.check_run(seeds={}, started_at=started, what="timing")
    work = Path(args.work)
    files = {}
    for name, rec in runs.items():
        onnx_path = work / f"{Path(rec['checkpoint']).stem}.onnx"
        export_onnx(load_checkpoint(work / rec["checkpoint"]), onnx_path)
        check_onnx(onnx_path)
        files[name] = str(onnx_path)
    load_before = os.getloadavg()[0]
    repeats = []
    for i in range(t["runs"]):
        res = time_models(files, runs=500, threads=1)
        repeats.append({n: res[n].median_ms for n in files})
        print(f"timing run {i + 1}/{t['runs']} done", file=sys.stderr, flush=True)
    atomic_write_json(TIMING, {
        "started_at": started, "finished_at": svg.now(), "runs": repeats,
        "rounds": 100, "runs_per_round": 5, "threads": 1, "batch": 1,
        "statistic": "wall-clock median", "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "machine": machine_facts("cpu", "cores", "onnxruntime", "python")})


# -- phase 3: report ------------------------------------------------------------------------------
def latency_ratios(timing: dict, runs: dict[str, dict], reference: str) -> dict[str, dict]:
    """Per model: each timing run's ratio (median over its seeds' files / the reference's)
    and their median."""
    out = {}
    models = sorted({r["model"] for r in runs.values()})
    for model in models:
        per_run = []
        for rep in timing["runs"]:
            mine = [rep[n] for n, r in runs.items() if r["model"] == model]
            ref = [rep[n] for n, r in runs.items() if r["model"] == reference]
            per_run.append(float(np.median(mine) / np.median(ref)))
        out[model] = {"ratio": float(np.median(per_run)), "ratios": per_run,
                      "ms": float(np.median([rep[n] for rep in timing["runs"]
                                             for n, r in runs.items() if r["model"] == model]))}
    return out


def analyse(reg: RegisteredProtocol, runs: dict[str, dict], timing: dict | None) -> dict:
    from scipy.stats import ttest_ind

    p = reg.protocol
    models = models_of(reg)
    seeds = p.seeds["training"]
    rows = []
    for model, arch in models.items():
        mine = sorted((r for r in runs.values() if r["model"] == model),
                      key=lambda r: r["seed"])
        test = [r["test_accuracy"] for r in mine]
        val = [r["val_accuracy"] for r in mine]
        rows.append({"model": model, "arch": arch, "runs": len(mine),
                     "seeds": [r["seed"] for r in mine], "test_accuracy": test,
                     "val_accuracy": val,
                     "test_mean": float(np.mean(test)) if test else None,
                     "test_se": float(np.std(test, ddof=1) / math.sqrt(len(test)))
                     if len(test) > 1 else None,
                     "val_mean": float(np.mean(val)) if val else None,
                     "macs": mine[0]["macs"] if mine else None,
                     "params": mine[0]["params"] if mine else None,
                     "train_cpu_s": float(np.mean([r["train_cpu_s"] for r in mine]))
                     if mine else None})
    planned = len(models) * len(seeds)
    complete = len(runs) == planned and all(a is not None for a in models.values())
    result = {"models": rows, "progress": {"runs_done": len(runs), "runs_planned": planned},
              "complete": complete, "tests": [], "goal": None, "latency": None}
    if timing is not None and complete:
        result["latency"] = latency_ratios(timing, runs, p.latency_target)
    if not complete:
        return result
    by = {r["model"]: r for r in rows}
    refs = [r for r in rows if r["model"] != SEARCHED]
    tests = [{"reference": r["model"],
              "difference": by[SEARCHED]["test_mean"] - r["test_mean"],
              "p": float(ttest_ind(by[SEARCHED]["test_accuracy"], r["test_accuracy"],
                                   equal_var=False, alternative="greater").pvalue)}
             for r in refs]
    for t, adj in zip(tests, svg.holm([t["p"] for t in tests]), strict=True):
        t["p_holm"] = adj
    best = max(refs, key=lambda r: r["test_mean"])
    vs_best = next(t for t in tests if t["reference"] == best["model"])
    ratio = result["latency"][SEARCHED]["ratio"] if result["latency"] else None
    result["tests"] = tests
    result["goal"] = {"best_reference": best["model"],
                      "gap_points": 100 * vs_best["difference"],
                      "gap_ok": 100 * vs_best["difference"] >= 0.30,
                      "p_holm": vs_best["p_holm"], "p_ok": vs_best["p_holm"] < 0.05,
                      "latency_ratio": ratio,
                      "latency_ok": None if ratio is None else ratio <= 1.00}
    return result


def report(args, reg: RegisteredProtocol) -> dict:
    runs = load_runs(reg)
    timing = json.loads(TIMING.read_text()) if TIMING.is_file() else None
    if timing is not None:
        reg.check_run(seeds={}, started_at=timing["started_at"], what="timing.json")
    result = {"schema_version": 3, "benchmark": "e2e_fmnist", "date": svg.now(), **reg.stamp(),
              "protocol_doc": {k: getattr(reg.protocol, k) for k in (
                  "question", "seeds", "epochs", "references", "latency_target", "recipe",
                  "selection_rule", "statistical_test", "decision_rule", "timing")},
              "supernet_sha256": reg.protocol.artifacts["supernet"],
              "table_sha256": reg.protocol.artifacts["table"],
              **analyse(reg, runs, timing),
              "timing": None if timing is None else {k: v for k, v in timing.items()
                                                     if k != "runs"},
              "restored": json.loads(RESTORED.read_text()) if RESTORED.is_file() else {},
              "command": f"python benchmarks/e2e_fmnist.py {shlex.join(sys.argv[1:])}".strip()}
    atomic_write_json(OUT.with_suffix(".json"), result)
    atomic_write_text(OUT.with_suffix(".md"), render(result))
    print(render(result))
    return result


def _p(p: float) -> str:
    """A p-value: four decimals, or two significant digits below 0.001."""
    return f"{p:.4f}" if p >= 1e-3 else f"{p:.1e}"


def _pm(mean: float | None, se: float | None) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}" + ("" if se is None else f" ± {100 * se:.2f}") + "%"


def render(res: dict) -> str:
    doc, pr = res["protocol_doc"], res["progress"]
    status = "complete" if res["complete"] else \
        f"in progress: {pr['runs_done']} of {pr['runs_planned']} runs"
    lines = [f"# End-to-end Fashion-MNIST: searched vs hand-designed ({res['date']})", "",
             f"Protocol `benchmarks/protocols/{res['protocol']}`, commit "
             f"{res['protocol_commit'][:10]} ({res['protocol_committed_at']}), fixed before "
             f"the first run. Supernet sha256 {res['supernet_sha256'][:12]}, table sha256 "
             f"{res['table_sha256'][:12]}. Status: **{status}**"
             + ("" if res["latency"] or not res["complete"] else
                "; latency not timed yet (`e2e_fmnist.py time` on a quiet machine)") + ".", "",
             f"Question: {doc['question']}", "", "## Result", ""]
    goal = res.get("goal")
    if goal is None:
        lines.append("No verdict until every run of the protocol is in: the decision rule is "
                     "applied once, to the complete set.")
    else:
        parts = [f"best reference {goal['best_reference']}; gap {goal['gap_points']:+.2f} "
                 f"points ({'>=' if goal['gap_ok'] else '<'} 0.30)",
                 f"Holm p {_p(goal['p_holm'])} ({'<' if goal['p_ok'] else '>='} 0.05)"]
        if goal["latency_ratio"] is None:
            parts.append("measured latency ratio: not timed yet")
        else:
            parts.append(f"measured latency ratio {goal['latency_ratio']:.3f} "
                         f"({'<=' if goal['latency_ok'] else '>'} 1.00)")
        met = goal["gap_ok"] and goal["p_ok"] and goal["latency_ok"]
        verdict = ("**goal met**" if met else "**goal not met**" if goal["latency_ok"]
                   is not None or not (goal["gap_ok"] and goal["p_ok"]) else
                   "**undecided until timed**")
        lines.append(f"{verdict}: " + "; ".join(parts) + ".")
        for t in res["tests"]:
            lines.append(f"- searched > {t['reference']}: {100 * t['difference']:+.2f} points "
                         f"of test accuracy, one-sided Welch p = {_p(t['p'])}, Holm p = "
                         f"{_p(t['p_holm'])}.")
    lines += ["", "| model | runs | test acc (mean ± SE) | val acc (mean) | measured ratio "
              "to fmnist28_mnasnet (per run) | MACs | params | train CPU s/run | arch |",
              "|---|---|---|---|---|---|---|---|---|"]
    lat = res.get("latency") or {}
    for r in res["models"]:
        la = lat.get(r["model"])
        ratio = "-" if la is None else \
            f"{la['ratio']:.3f} ({', '.join(f'{x:.3f}' for x in la['ratios'])})"
        macs = "-" if r["macs"] is None else f"{r['macs'] / 1e6:.2f}M"
        params = "-" if r["params"] is None else f"{r['params'] / 1e3:.1f}k"
        cpu = "-" if r["train_cpu_s"] is None else f"{r['train_cpu_s']:.0f}"
        arch = "chosen once the rl picks are trained" if r["arch"] is None else \
            f"`{r['arch']}`"
        lines.append(f"| {r['model']} | {r['runs']} | {_pm(r['test_mean'], r['test_se'])} | "
                     f"{_pm(r['val_mean'], None)} | {ratio} | {macs} | {params} | {cpu} | "
                     f"{arch} |")
    lines += ["", "## Protocol", "", f"- Recipe: {doc['recipe']['training']}.",
              "- References: " + "; ".join(f"{r['name']} ({r['scaling']}, "
                                             f"{r['predicted_ratio']:.3f}x predicted)"
                                             for r in doc["references"]) + ".",
              f"- Scaling: {doc['recipe']['scaling']}.",
              f"- Selection: {doc['selection_rule']}", f"- Test: {doc['statistical_test']}",
              f"- Decision: {doc['decision_rule']}",
              f"- Timing: {'; '.join(f'{k}: {v}' for k, v in doc['timing'].items())}.", ""]
    if res.get("timing"):
        t = res["timing"]
        lines += [f"Timed {t['started_at']} on {t['machine']['cpu']} ({t['machine']['cores']} "
                  f"cores, onnxruntime {t['machine']['onnxruntime']}), load average "
                  f"{t['load_average_before']:.2f} before, {t['load_average_after']:.2f} "
                  f"after.", ""]
    for name, r in sorted(res.get("restored", {}).items()):
        lines += [f"Checkpoint of {name} lost with its folder and retrained for the timing "
                  f"({r['restored_at']}), same architecture, seed and epochs; its record is "
                  f"unchanged. Retrained: val {100 * r['val_accuracy']:.2f}%, test "
                  f"{100 * r['test_accuracy']:.2f}% (recorded "
                  f"{100 * r['recorded_val_accuracy']:.2f}%, "
                  f"{100 * r['recorded_test_accuracy']:.2f}%): "
                  + ("reproduced exactly." if r["reproduced"] else "not reproduced exactly."),
                  ""]
    lines += ["Test accuracy decides nothing but the verdict; every choice used validation "
              "accuracy. The 2026-11-30 page this replaces (5 epochs, 4 seeds, two references, "
              "the previous supernet) is in git history.", "",
              f"Command: `{res['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", choices=("train", "restore", "time", "report"))
    p.add_argument("--seeds", type=int, nargs="+",
                   help="train: a subset of the protocol's seeds (default: all)")
    p.add_argument("--work", default="runs/e2e_fmnist", help="checkpoints and ONNX files")
    args = p.parse_args(argv)
    return run_main(lambda: _run(args))


def _run(args: argparse.Namespace) -> None:
    reg = prot.load_protocol(PROTOCOL)
    if args.seeds:
        for s in args.seeds:
            reg.check_run(seeds={"training": s}, started_at=svg.now())
    {"train": train, "restore": restore, "time": time_all,
     "report": report}[args.phase](args, reg)


if __name__ == "__main__":
    sys.exit(main())
