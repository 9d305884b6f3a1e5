"""The demo pipeline: search → train → export → bench → report on Fashion-MNIST, minutes on
a laptop CPU, as one library call (``mobile-nas demo`` prints what it returns).

The latency table of this machine (the shipped fmnist28 table where it was timed on this
CPU model, else one built here, once) and its anchor re-timed (a second) → shipped pretrained
supernet → RL search under a latency target set by a hand-designed reference ("as fast as
fmnist28_mnasnet", predicted by that table), ending by timing its best
finalists against that reference on this machine → train the pick → export fp32 and INT8
ONNX (verified; server profile, and the mobile profile with its ORT format files and
NNAPI/CoreML coverage) → time both, and the pick beside the space's references as ratios to
the target's reference timed interleaved in several runs → report. Every stage keeps its
outputs in ``out_dir`` and is skipped or resumed when the pipeline is run again with the
same settings::

    from mobile_nas.pipeline import DemoConfig, run_demo
    result = run_demo(DemoConfig(out_dir="demo_out", trials=10, epochs=1))
    result.deploy.export.timing["fp32"]["p50_ms"]

The record of what was trained and exported is ``RUN_DIR/deploy.json`` (a
:class:`~mobile_nas.report.deploy.DeployRecord`), which ``mobile-nas report`` shows; a copy
is ``out_dir/summary.json``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mobile_nas.atomic import atomic_write_json
from mobile_nas.cost.latency import TableRequest
from mobile_nas.cost.latency.build import table_for_this_machine
from mobile_nas.cost.latency.measure import time_anchor_ms
from mobile_nas.cost.latency.probe import DEFAULT_PROBES
from mobile_nas.cost.latency.relative import parse_latency_target
from mobile_nas.cost.latency.runner import cpu_model
from mobile_nas.cost.latency.source import open_table
from mobile_nas.cost.latency.table import shipped_table_path
from mobile_nas.cost.model_costs import model_costs
from mobile_nas.errors import MobileNasError, SettingError
from mobile_nas.export.deploy import export_checkpoint
from mobile_nas.report.build import ReportFiles, build_report
from mobile_nas.report.deploy import DEPLOY_FILE, DeployRecord, TrainedModel
from mobile_nas.report.protocol import file_sha256
from mobile_nas.report.references import compare_with_references
from mobile_nas.search.runner import SearchConfig, run_search
from mobile_nas.search.strategies.reinforce import SAMPLE_CONTROLLER
from mobile_nas.space import Architecture, get_space
from mobile_nas.train.checkpoint import load_checkpoint
from mobile_nas.train.data import load_dataset
from mobile_nas.train.trainer import train_architecture

SPACE = "fmnist28"
DATASET = "fashion-mnist"
#: Beside the demo's search: the table it predicted with (path and SHA-256).
SEARCH_TABLE = "demo_table.json"


@dataclass(frozen=True)
class DemoConfig:
    """Settings of :func:`run_demo`. ``latency_target`` is a reference target (``REF`` or
    ``<factor>xREF``, :mod:`mobile_nas.cost.latency.relative`); ``latency_target_ms``, when
    set, a target in milliseconds of the table instead; ``verify_top`` the
    finalists timed against the reference;
    ``train_subset`` trains the winner on that many training images (None: all 55000);
    ``threads`` sets torch's threads (None: torch's default); ``device`` and ``amp`` as
    :func:`mobile_nas.device.resolve_device` takes them; ``seed`` seeds the search and the
    winner's training (the train/validation split stays the shipped supernet's)."""

    out_dir: str | os.PathLike = "demo_out"
    latency_target: str = "fmnist28_mnasnet"
    latency_target_ms: float | None = None
    verify_top: int = 5
    probe_reference: int = DEFAULT_PROBES  # see SearchConfig.probe_reference
    trials: int = 40
    epochs: int = 2
    train_subset: int | None = None
    threads: int | None = None
    device: str = "auto"
    amp: bool | None = None
    seed: int = 0
    data_dir: str | None = None
    val_size: int | float | None = None  # None: 5,000 (10% of Fashion-MNIST, the shipped
    # supernet's split); another size trains a quick supernet for the search
    table: str | None = None  # None: the shipped table if timed on this CPU model, else one
    # built here into out_dir (3 passes, about 3 minutes on 2 cores); "shipped": the shipped one;
    # else a table file


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` produced. ``deploy`` is what ``RUN_DIR/deploy.json`` holds;
    ``best`` the search's ``best.json``; ``report`` the files of the HTML report."""

    out_dir: Path
    run_dir: Path
    model_path: Path
    onnx_path: Path
    best: dict[str, Any]
    deploy: DeployRecord
    report: ReportFiles
    reused_search: bool
    reused_model: bool
    anchor_ms: float | None = None


def other_cpu_note(table_name: str, timed_on: str | None, here: str) -> str | None:
    """A line for a table timed on another CPU model than this machine's (None otherwise)."""
    if not timed_on or timed_on == here:
        return None
    return (f"   {table_name} was timed on {timed_on}, this machine has {here}: a table's "
            f"predicted ratios can be 10% or more off on another CPU (10-15% on an Intel Xeon "
            f"with the AMD-timed fmnist28.json, README); the pick is chosen by timing the "
            f"finalists here")


def run_demo(config: DemoConfig, *, log: Callable[[str], None] | None = None) -> DemoResult:
    """Runs the pipeline (see the module docstring) into ``config.out_dir``; ``log`` gets
    one progress line at a time. Raises :class:`~mobile_nas.errors.MobileNasError` for bad
    input (e.g. ``out_dir`` is a file) and what each stage raises."""
    import torch

    say = log or (lambda _msg: None)
    t_start = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    if out.exists() and not out.is_dir():
        raise SettingError("out_dir", "{what} {value!r} exists and is not a folder",
                           value=str(out))
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "search"
    stage_s: dict[str, float] = {}
    # the table of this machine: the search, export_checkpoint and the comparison predict
    # with it, its milliseconds made this machine's by re-timing the anchor now
    t = time.perf_counter()
    table_file = _demo_table(config, out, say)
    stage_s["table"] = time.perf_counter() - t
    latency = open_table(SPACE, table_file)
    if latency is None:
        raise MobileNasError(f"no latency table is shipped for space {SPACE!r}")
    table_path = Path(latency.path)
    calibration = latency.table.calibration
    table_anchor_ms = calibration.anchor_ms if calibration is not None else None  # relative
    anchor_ms = None
    if table_anchor_ms is not None:
        anchor_ms = time_anchor_ms()
        latency = latency.at_anchor_ms(anchor_ms)
        say(f"   the tables' anchor network on this machine: {anchor_ms:.4f} ms "
            f"({anchor_ms / table_anchor_ms:.2f}x its time when "
            f"{table_path.name} was calibrated); predictions below are in this machine's ms")
    note = other_cpu_note(table_path.name, latency.table.metadata.get("cpu"), cpu_model())
    if note:
        say(note)
    target = (f"{config.latency_target_ms:g} ms" if config.latency_target_ms is not None
              else config.latency_target)
    say(f"== 1/5 search: shipped supernet + RL controller, {config.trials} trials, latency "
        f"target {target} ({latency.statistic} predicted by {table_path.name}), "
        f"then the best {config.verify_top} timed against the reference")
    t = time.perf_counter()
    best = _finished_search(run_dir, config, table_path)
    reused_search = best is not None
    if best is None:
        search = SearchConfig(space=SPACE, strategy="rl", trials=config.trials,
                              # the controller README's demo output was verified with
                              strategy_options=dict(SAMPLE_CONTROLLER),
                              out_dir=str(run_dir), dataset=DATASET,
                              data_dir=config.data_dir, val_size=config.val_size,
                              latency_target_ms=config.latency_target_ms,
                              latency_target=None if config.latency_target_ms is not None
                              else config.latency_target,
                              verify_top=config.verify_top, reward="hard",
                              probe_reference=config.probe_reference,
                              table=str(table_path),
                              preset="quick", resume=True, seed=config.seed,
                              threads=config.threads, device=config.device, amp=config.amp)
        best = run_search(search).best
        atomic_write_json(run_dir / SEARCH_TABLE, {"table": str(table_path),
                                                   "sha256": file_sha256(table_path)})
    else:
        say(f"   reusing the finished search in {run_dir}")
    stage_s["search"] = time.perf_counter() - t
    arch = Architecture.from_string(best["arch"], SPACE)
    say(f"   pick {best['arch']}: proxy accuracy {100 * best['accuracy']:.1f}%, "
        f"predicted {latency.predict_ms(arch):.3f} ms, {best['macs'] / 1e6:.2f}M MACs "
        f"({stage_s['search']:.0f} s)")

    say(f"== 2/5 train the winner: {config.epochs} epochs, SGD + cosine, label smoothing")
    t = time.perf_counter()
    model_pt = out / "model.pt"
    ckpt = None
    if model_pt.is_file():
        try:
            ckpt = load_checkpoint(model_pt)
        except MobileNasError:
            ckpt = None
        if ckpt is not None and (ckpt.arch != arch.to_string()
                                 or ckpt.recipe.get("epochs") != config.epochs
                                 or ckpt.recipe.get("train_subset") != config.train_subset):
            ckpt = None
    reused_model = ckpt is not None
    if ckpt is None:
        dataset = load_dataset(DATASET, data_dir=config.data_dir, val_size=config.val_size,
                               seed=SearchConfig.split_seed)
        ckpt = train_architecture(arch, dataset, out=model_pt, epochs=config.epochs,
                                  resume=True, train_subset=config.train_subset,
                                  seed=config.seed, device=config.device, amp=config.amp)
    else:
        say(f"   reusing {model_pt}")
    stage_s["train"] = time.perf_counter() - t
    m = ckpt.metrics
    say(f"   test accuracy {100 * m['test_accuracy']:.2f}% ({stage_s['train']:.0f} s)")

    say("== 3/5 export fp32 + INT8 ONNX (server and mobile profiles), verify, time both "
        "(onnxruntime, batch 1, 1 thread)")
    t = time.perf_counter()
    onnx_path = out / "model.onnx"
    server = export_checkpoint(model_pt, onnx_path, int8=True, data_dir=config.data_dir,
                               time_runs=200, threads=1, int8_required=False,
                               log=lambda s: say(f"   {s}"))
    mobile = export_checkpoint(model_pt, out / "model.mobile.onnx", int8=True, mobile=True,
                               data_dir=config.data_dir, time_runs=200, threads=1,
                               int8_required=False, log=lambda s: say(f"   {s}"))
    ratio_to = _target_reference(config)
    say(f"   the pick beside the references, as ratios to {ratio_to or 'the first reference'} "
        f"(5 interleaved runs)")
    probe = (best.get("latency_target") or {}).get("probe")
    compared = compare_with_references(
        arch, ratio_to=ratio_to, predict_ms=latency.predict_ms,
        probe_shift=float(probe["shift"]) if probe and ratio_to is not None else None)
    int8_table = shipped_table_path(SPACE, "int8")
    int8_predicted = None
    if int8_table is not None and server.int8 is not None:  # next to the INT8 measurement
        int8_predicted = _int8_prediction(arch, int8_table, say)
    stage_s["export"] = time.perf_counter() - t

    say("== 4/5 report")
    t = time.perf_counter()
    costs = model_costs(arch)
    deploy = DeployRecord(
        arch=arch.to_string(), space=arch.space, macs=costs.macs, params=costs.params,
        train=TrainedModel(path=str(model_pt), epochs=m["epochs"],
                           train_images=m["train_images"], seconds=m["seconds"],
                           val_accuracy=m["val_accuracy"], test_accuracy=m["test_accuracy"]),
        export=server, export_mobile=mobile, references=tuple(compared),
        stage_seconds=dict(stage_s), predicted_statistic=latency.statistic,
        latency_table=str(table_path), predicted_int8_ms=int8_predicted and int8_predicted[0],
        int8_latency_table=int8_predicted and str(int8_table),
        predicted_int8_statistic=int8_predicted and int8_predicted[1])
    deploy.save(run_dir / DEPLOY_FILE)  # the report shows it
    files = build_report(run_dir)
    stage_s["report"] = time.perf_counter() - t
    deploy = replace(deploy, stage_seconds=dict(stage_s),
                     total_seconds=time.perf_counter() - t_start)
    deploy.save(run_dir / DEPLOY_FILE)
    deploy.save(out / "summary.json")
    say("== 5/5 done")
    return DemoResult(out_dir=out, run_dir=run_dir, model_path=model_pt, onnx_path=onnx_path,
                      best=best, deploy=deploy, report=files, reused_search=reused_search,
                      reused_model=reused_model, anchor_ms=anchor_ms)


def _target_reference(config: DemoConfig) -> str | None:
    """The reference the demo's ratios are to: the target's, else the space's first."""
    if config.latency_target_ms is not None:
        return None
    spec = parse_latency_target(config.latency_target)
    return spec.reference if spec.kind == "name" else None


def _demo_table(config: DemoConfig, out: Path, say: Callable[[str], None]) -> Path:
    """The table file the demo predicts with (:attr:`DemoConfig.table`), said in a line."""
    shipped = shipped_table_path(SPACE)
    if config.table not in (None, "shipped"):
        return Path(str(config.table))
    if config.table == "shipped":
        if shipped is None:
            raise MobileNasError(f"no latency table is shipped for space {SPACE!r}")
        return shipped  # run_demo says when it was timed on another CPU model
    say("== 0/5 the latency table of this machine (one timed on another CPU predicts other "
        "ratios)")
    chosen = table_for_this_machine(get_space(SPACE), shipped, out,
                                    log=lambda line: say(f"   {line}"))
    say(f"   {chosen.reason}")
    return chosen.path


def _finished_search(run_dir: Path, config: DemoConfig, table: Path) -> dict | None:
    """best.json of an earlier demo search with the same settings, the same table and
    enough trials."""
    try:
        best = json.loads((run_dir / "best.json").read_text())
        pareto = json.loads((run_dir / "pareto.json").read_text())
        used = json.loads((run_dir / SEARCH_TABLE).read_text())
    except (OSError, ValueError):
        return None
    if used.get("sha256") != file_sha256(table):
        return None
    reward_fn = pareto.get("reward_fn") or pareto.get("reward")
    targets = reward_fn.get("targets", {}) if isinstance(reward_fn, dict) else {}
    if config.latency_target_ms is None:
        spec = parse_latency_target(config.latency_target)
        held = pareto.get("latency_target") or {}
        probes = len((held.get("probe") or {}).get("probes", ()))
        same_target = (held.get("reference"), held.get("factor"), probes) == (
            spec.reference, spec.factor, config.probe_reference)
    else:
        same_target = targets == {"latency_ms": config.latency_target_ms}
    verified = config.verify_top == 0 or isinstance(best.get("verified"), dict)
    same = (best.get("space") == SPACE and best.get("strategy") == "rl" and same_target
            and verified
            and isinstance(reward_fn, dict) and reward_fn.get("kind") == "hard"
            and isinstance(best.get("trials"), int) and best["trials"] >= config.trials
            and isinstance(best.get("arch"), str))
    return best if same else None


def _int8_prediction(arch, table_path, say: Callable[[str], None]
                     ) -> tuple[float, str] | None:
    """The INT8 latency the space's shipped INT8 table predicts for ``arch`` and what it
    predicts (statistic), or None (said) when that table cannot predict it."""
    try:
        latency = open_table(SPACE, table_path, request=TableRequest(precision="int8"))
        assert latency is not None  # table_path is given
        return latency.predict_ms(arch), latency.statistic
    except MobileNasError as exc:
        say(f"   no INT8 prediction: {exc}")
        return None
