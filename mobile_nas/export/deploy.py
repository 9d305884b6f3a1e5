"""The export pipeline behind ``mobile-nas export``: export, check, verify, quantize, time.

1. ONNX export of the checkpoint (normalization inside) with metadata, in one of two
   profiles: ``server`` (dynamic batch, the training network's operators) or ``mobile``
   (batch 1, fixed shapes, modules swapped for operators NNAPI and CoreML take; see
   :mod:`mobile_nas.export.mobile`).
2. ``onnx.checker`` full check; onnxruntime's own mobile usability analysis (per provider:
   partitions and share of nodes, recorded in the metadata; ``require`` makes a provider
   that would not take the whole graph an error); onnxruntime parity with the PyTorch
   training network on real test images (fp32 must agree within ``FP32_TOLERANCE``); test
   accuracy through onnxruntime.
3. ``int8=True``: static QDQ quantization calibrated on training images; calibration
   settings are tried in turn and the best on validation images kept; its test accuracy
   must stay within ``INT8_MAX_DROP`` of fp32. The mobile profile only tries per-channel
   symmetric int8 weights with uint8 activations, the form NNAPI takes.
4. Mobile profile: ORT format files (``.ort``) and the reduced-operator config through
   onnxruntime's converter, the ``.ort`` checked against PyTorch as well; the metadata of
   every file says which file is for what (``deploy_files``).
5. Interleaved onnxruntime timing of fp32 and INT8 (batch 1), speed-up = fp32 / INT8 p50
   (:class:`ExportTiming`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from mobile_nas.atomic import atomic_path, atomic_write_bytes
from mobile_nas.cost.latency import measure
from mobile_nas.cost.latency.runner import time_interleaved, timing_result
from mobile_nas.errors import MobileNasError, SettingError
from mobile_nas.export.errors import ExportError
from mobile_nas.export.metadata import model_metadata, predicted_latency
from mobile_nas.export.onnx_export import DeployModel, check_output_path, export_onnx, set_metadata
from mobile_nas.export.ort_format import (
    OPTIMIZATION_STYLE,
    config_path_for,
    convert_to_ort,
    ort_path_for,
)
from mobile_nas.export.quantize import quantize_int8
from mobile_nas.export.usability import REQUIRE_CHOICES, check_mobile_usability
from mobile_nas.export.verify import check_onnx, onnx_accuracy, ort_logits, parity
from mobile_nas.jsonrecord import record_kwargs
from mobile_nas.space import get_space
from mobile_nas.space.base import ScalableSpace
from mobile_nas.space.scaled import transfer_arch
from mobile_nas.train.checkpoint import CheckpointError, load_checkpoint
from mobile_nas.train.data import load_dataset
from mobile_nas.train.imageset import ImageSet

if TYPE_CHECKING:
    from mobile_nas.cost.latency.runner import TimingResult
    from mobile_nas.space.base import SearchSpace

FP32_TOLERANCE = 1e-4
INT8_MAX_DROP = 0.01
#: (method, per-channel weights) tried in turn; the best on validation images is kept.
CALIBRATIONS = (("minmax", True), ("minmax", False), ("percentile", True),
                ("percentile", False))
INT8_ORT_AGREEMENT = 0.99  # top-1 agreement of the INT8 .ort with the INT8 ONNX
#: The mobile profile keeps per-channel symmetric int8 weights, uint8 activations (NNAPI).
MOBILE_CALIBRATIONS = (("minmax", True), ("percentile", True))
VAL_IMAGES = 2000
EARLY_STOP_DROP = 0.002  # stop trying once validation loses at most 0.2 points


class ModelTiming(TypedDict):
    """One file's batch-1 timing as export reports record it: a
    :class:`~mobile_nas.cost.latency.runner.TimingResult`'s median (``p50_ms``), p90, mean
    and number of runs."""

    p50_ms: float
    p90_ms: float
    mean_ms: float
    runs: int


class _TimingThreads(TypedDict):
    threads: int


class ExportTiming(_TimingThreads, total=False):
    """``export``'s timing of its files (:attr:`ExportReport.timing`): ``fp32``, ``int8``
    when an INT8 model was kept, the intra-op ``threads`` and, when both were timed,
    ``speedup`` = fp32 p50 / INT8 p50."""

    fp32: ModelTiming
    int8: ModelTiming
    speedup: float


class _OrtRequired(TypedDict):
    path: str
    int8_path: str | None
    config: str
    optimization_style: str
    max_abs_diff: float
    parity_images: int
    size_bytes: int


class OrtRecord(_OrtRequired, total=False):
    """The mobile profile's ORT format files (:attr:`ExportReport.ort`): the fp32 ``.ort``
    (``path``; its parity with PyTorch: ``max_abs_diff`` on ``parity_images``), the INT8 one
    (``int8_path``, None without INT8; ``int8_top1_agreement`` with the INT8 ONNX) and the
    reduced-operator ``config``."""

    int8_top1_agreement: float


@dataclass(frozen=True)
class Int8Result:
    path: str
    test_accuracy: float
    accuracy_drop: float  # fp32 minus int8, fraction
    calibration: str
    calibration_images: int
    max_abs_diff: float  # INT8 vs fp32 PyTorch logits on the parity images
    top1_agreement: float
    size_bytes: int
    mobile_usability: dict | None = None  # onnxruntime's analysis of the INT8 file

    @classmethod
    def from_json(cls, data: dict) -> Int8Result:
        """Reads ``asdict`` output back; raises :class:`ExportError` naming a bad key."""
        return cls(**record_kwargs(cls, data, what="INT8 result", error=ExportError))


@dataclass(frozen=True)
class ExportReport:
    """What ``export_checkpoint`` wrote and verified. Times in milliseconds (batch 1)."""

    path: str
    arch: str
    space: str
    opset: int
    checkpoint_test_accuracy: float | None
    test_accuracy: float  # fp32 ONNX through onnxruntime, full test split
    test_images: int
    max_abs_diff: float
    mean_abs_diff: float
    parity_images: int
    predicted_latency_ms: float | None
    size_bytes: int
    int8: Int8Result | None
    timing: ExportTiming | None
    int8_error: str | None = None  # why no INT8 model was kept (int8_required=False)
    profile: str = "server"  # "server" (dynamic batch) or "mobile" (batch 1, fixed shapes)
    mobile_usability: dict | None = None  # onnxruntime's analysis, per provider
    ort: OrtRecord | None = None  # mobile profile only

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ExportReport:
        """Reads :meth:`to_json` output back; raises :class:`ExportError` (one line) naming
        a missing, unknown or mistyped key."""
        kwargs = record_kwargs(cls, data, what="export report", error=ExportError)
        for key in ("timing", "ort"):  # typed dicts: record_kwargs checks plain types only
            value = kwargs.get(key)
            if value is not None and not isinstance(value, dict):
                raise ExportError(f"export report: {key!r} must be dict or null, got "
                                  f"{value!r:.40}")
        if kwargs["int8"] is not None:
            kwargs["int8"] = Int8Result.from_json(kwargs["int8"])
        return cls(**kwargs)


def int8_path_for(out: str | os.PathLike) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.int8{out.suffix or '.onnx'}")


def export_checkpoint(checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                      opset: int = 17, int8: bool = False, mobile: bool = False,
                      require: tuple[str, ...] | list[str] = (),
                      int8_out: str | os.PathLike | None = None, table: str | None = None,
                      parity_images: int = 256, calibration_images: int = 512,
                      data_dir: str | None = None, time_runs: int = 100, threads: int = 1,
                      int8_required: bool = True, space: str | None = None,
                      log=None) -> ExportReport:
    """Exports and verifies ``checkpoint``; see the module docstring. ``log`` gets progress
    lines (e.g. ``print`` to stderr). Raises ExportError/CheckpointError on bad input or a
    failed verification. With ``int8_required=False`` an INT8 model that loses too much
    accuracy is dropped and the reason recorded in ``int8_error`` instead.

    ``space`` exports the checkpoint's cells in another scaled space of the same cell space
    (e.g. ``nasnet@n1-f8-r32``). Only a space whose network has exactly the checkpoint's
    weights qualifies (in practice: another input size); the test, validation and
    calibration images are then resized to its input for the checks, and ``accuracy`` in the
    metadata is the one measured at that size.

    ``mobile=True`` exports the mobile profile (batch 1, fixed shapes, NNAPI/CoreML
    operators) and also writes ``<out stem>.ort`` (and ``<out stem>.int8.ort``) plus
    ``<out stem>.required_operators.config``. ``require`` names providers (``nnapi``,
    ``coreml``, ``coreml-nn``, ``coreml-mlprogram``) that must take the whole graph in one
    partition; otherwise ExportError, and the ONNX file is removed."""
    say = log or (lambda _msg: None)
    require = tuple(require)
    unknown = [r for r in require if r not in REQUIRE_CHOICES]
    if unknown:
        raise ExportError(f"unknown provider {unknown[0]!r} to require; known: "
                          f"{', '.join(REQUIRE_CHOICES)}")
    if require and not mobile:
        raise SettingError("require", "requiring {providers} needs the mobile profile "
                           "({others[0]}): the server profile has a dynamic batch, which "
                           "NNAPI and CoreML do not take", value=require, others=("mobile",),
                           providers=", ".join(require))
    profile = "mobile" if mobile else "server"
    if mobile and Path(out).suffix.lower() == ".ort":
        raise SettingError("out", "{what} {value!r}: name the ONNX file (e.g. m.onnx); the "
                           "mobile profile writes the .ort beside it", value=str(out))
    ckpt = load_checkpoint(checkpoint)
    check_output_path(out)
    int8_target = Path(int8_out) if int8_out else int8_path_for(out)
    if int8:
        check_output_path(int8_target)
    trained_acc = ckpt.metrics.get("test_accuracy")
    resized = False
    if space is not None and space != ckpt.space:
        ckpt = _rescaled_checkpoint(ckpt, space, checkpoint)
        resized = True
    arch = ckpt.architecture()
    net = ckpt.build_model()
    dataset = load_dataset(ckpt.dataset["name"], data_dir=data_dir,
                           seed=int(ckpt.recipe.get("seed", 0)),
                           image_shape=tuple(ckpt.dataset["input_shape"])
                           if ckpt.dataset.get("input_shape") else None)
    if tuple(dataset.classes) != ckpt.classes:
        raise ExportError(f"dataset {ckpt.dataset['name']!r} has classes {dataset.classes}, "
                          f"the checkpoint {ckpt.classes}")
    if resized:
        dataset = _resized_dataset(dataset, tuple(ckpt.dataset["input_shape"]),
                                   calibration_images=calibration_images)
    pred = predicted_latency(arch, table)
    ckpt_acc = None if resized else trained_acc
    meta = model_metadata(ckpt, accuracy=ckpt_acc if ckpt_acc is not None else float("nan"),
                          latency_ms=None if pred is None else pred["latency_ms"],
                          latency_statistic=None if pred is None else pred["statistic"],
                          profile=profile,
                          extra={"opset": opset})

    say(f"exporting {arch.to_string()} ({profile} profile, opset {opset}) → {out}")
    export_onnx(ckpt, out, opset=opset, metadata=meta, mobile=mobile)
    check_onnx(out)
    usability = check_mobile_usability(out)
    say(f"onnxruntime mobile usability: {usability.summary()}")
    failing = usability.failing(require)
    if failing:
        Path(out).unlink(missing_ok=True)
        raise ExportError(
            f"{' and '.join(c.provider for c in failing)} would not take the whole graph "
            f"(required): " + "; ".join(c.summary() for c in failing) + "; nothing written")
    meta["mobile_usability"] = usability.metadata_value()
    _rewrite_metadata(out, {"mobile_usability": meta["mobile_usability"]})
    deploy = DeployModel(net, ckpt.mean, ckpt.std)
    par = parity(deploy, out, dataset.test.images[:parity_images])
    if not par.max_abs_diff <= FP32_TOLERANCE:
        Path(out).unlink(missing_ok=True)
        raise ExportError(f"fp32 ONNX disagrees with PyTorch: max |diff| {par.max_abs_diff:.3g}"
                          f" > {FP32_TOLERANCE:g} on {par.images} test images")
    say(f"checker ok; parity max |diff| {par.max_abs_diff:.2e} on {par.images} test images")
    fp32_acc = onnx_accuracy(out, dataset.test)
    if ckpt_acc is None:  # a checkpoint without metrics: record what we measured
        _rewrite_metadata(out, {"accuracy": f"{fp32_acc:.6f}"})
    say(f"fp32 test accuracy (onnxruntime) {fp32_acc:.4f}")

    int8_result, int8_error = None, None
    if int8:
        calib = dataset.train.subset(calibration_images, seed=1).images
        try:
            int8_result = _quantize(ckpt, deploy, out, int8_target, calib, dataset, fp32_acc,
                                    meta, parity_images, say,
                                    MOBILE_CALIBRATIONS if mobile else CALIBRATIONS)
        except ExportError as exc:
            if int8_required:
                raise
            int8_error = str(exc)
            say(f"no INT8 model: {exc}")
    ort_files = None
    if mobile:
        ort_files = _write_ort(out, int8_result, deploy, dataset.test.images[:parity_images],
                               say)
    timing = None
    if time_runs > 0:
        paths = {"fp32": out} | ({"int8": int8_target} if int8_result else {})
        timing = export_timing(time_models(paths, runs=time_runs, threads=threads), threads)
        say("timing (batch 1, " + f"{threads} thread(s)): " + ", ".join(
            f"{k} p50 {v['p50_ms']:.3f} ms" for k, v in timing.items() if isinstance(v, dict))
            + (f", INT8 speed-up ×{timing['speedup']:.2f}" if "speedup" in timing else ""))
    return ExportReport(
        path=str(out), arch=arch.to_string(), space=arch.space, opset=opset,
        checkpoint_test_accuracy=trained_acc, test_accuracy=fp32_acc,
        test_images=len(dataset.test), max_abs_diff=par.max_abs_diff,
        mean_abs_diff=par.mean_abs_diff, parity_images=par.images,
        predicted_latency_ms=None if pred is None else pred["latency_ms"],
        size_bytes=Path(out).stat().st_size, int8=int8_result, timing=timing,
        int8_error=int8_error, profile=profile, mobile_usability=usability.to_json(),
        ort=ort_files)


def _write_ort(out, int8_result, deploy, images, say) -> OrtRecord:
    """ORT format of the mobile files (onnxruntime's converter), after the metadata of every
    file names every deployable; the fp32 ``.ort`` must match PyTorch as the ONNX does."""
    out = Path(out)
    onnx_files = [out] + ([Path(int8_result.path)] if int8_result else [])
    config = config_path_for(out)
    roles = {out.name: "fp32 ONNX, mobile profile (batch 1, fixed shapes, NNAPI/CoreML "
                       "operators): full onnxruntime builds, and the source of the .ort"}
    if int8_result:
        roles[Path(int8_result.path).name] = (
            "INT8 QDQ ONNX of the mobile profile (per-channel symmetric int8 weights, uint8 "
            "activations): NNAPI on Android")
    roles[ort_path_for(out).name] = (
        f"ORT format of {out.name} for onnxruntime Mobile and minimal builds (optimization "
        f"style {OPTIMIZATION_STYLE}: set session.enable_saved_runtime_optimizations=1)")
    if int8_result:
        roles[ort_path_for(int8_result.path).name] = (
            f"ORT format of {Path(int8_result.path).name} for onnxruntime Mobile")
    roles[config.name] = ("operators the .ort files need: onnxruntime's build.sh "
                          "--include_ops_by_config for a reduced build")
    for path in onnx_files:
        _rewrite_metadata(path, {"deploy_files": json.dumps(roles)})
    files = convert_to_ort(onnx_files, config=config)
    fp32_ort = files.models[str(out)]
    par = parity(deploy, fp32_ort, images)
    if not par.max_abs_diff <= FP32_TOLERANCE:
        for p in (*files.models.values(), files.config):
            Path(p).unlink(missing_ok=True)
        raise ExportError(f"the ORT format file disagrees with PyTorch: max |diff| "
                          f"{par.max_abs_diff:.3g} > {FP32_TOLERANCE:g} on {par.images} "
                          f"test images")
    say(f"ORT format: {fp32_ort} (parity max |diff| {par.max_abs_diff:.2e}), operator config "
        f"{files.config}")
    result: OrtRecord = {
        "path": fp32_ort, "int8_path": None, "config": files.config,
        "optimization_style": OPTIMIZATION_STYLE, "max_abs_diff": par.max_abs_diff,
        "parity_images": par.images, "size_bytes": Path(fp32_ort).stat().st_size}
    if int8_result:
        int8_ort = files.models[str(int8_result.path)]
        result["int8_path"] = int8_ort
        result["int8_top1_agreement"] = _int8_ort_agreement(int8_result.path, int8_ort, images)
    return result


def _int8_ort_agreement(int8_onnx, int8_ort, images) -> float:
    """Top-1 agreement of the INT8 ``.ort`` (saved runtime optimizations replayed, as it is
    meant to run) with the INT8 ONNX on ``images``; ExportError below ``INT8_ORT_AGREEMENT``."""
    ref = ort_logits(measure.load_session(int8_onnx), images)
    got = ort_logits(measure.load_session(int8_ort, config={
        "session.enable_saved_runtime_optimizations": "1"}), images)
    agreement = float((ref.argmax(1) == got.argmax(1)).mean())
    if agreement < INT8_ORT_AGREEMENT:
        Path(int8_ort).unlink(missing_ok=True)
        raise ExportError(f"the INT8 ORT format file agrees with the INT8 ONNX on only "
                          f"{100 * agreement:.1f}% of {len(images)} test images")
    return agreement


def _rescaled_checkpoint(ckpt, space: str, checkpoint):
    """``ckpt``'s cells and weights in ``space``, another size of the same cell space; raises
    ExportError when the weights do not fit there (other cells, filters, channels or
    classes)."""
    try:
        arch = transfer_arch(ckpt.architecture(), space)
    except MobileNasError as exc:
        raise ExportError(f"cannot export {str(checkpoint)!r} as space {space!r}: {exc}") \
            from None
    target = get_space(arch.space)
    data_shape = tuple(ckpt.dataset.get("input_shape") or ())
    if data_shape and target.input_shape[0] != data_shape[0]:
        raise ExportError(f"{str(checkpoint)!r} was trained on {data_shape[0]}-channel images; "
                          f"space {target.name!r} takes {target.input_shape[0]} channels")
    out = dataclasses.replace(ckpt, arch=arch.to_string(), space=arch.space,
                              dataset={**ckpt.dataset,
                                       "input_shape": list(target.input_shape)})
    try:
        out.build_model()
    except CheckpointError:
        source = ckpt.architecture().search_space
        raise ExportError(
            f"{str(checkpoint)!r} holds the weights of {_sized(source)}; {_sized(target)} "
            f"needs other weights: train it ('mobile-nas train ARCH --space {target.name}') "
            f"and export that checkpoint") from None
    return out


def _sized(space: SearchSpace) -> str:
    knobs = f"N={space.cells}, F={space.filters}, " if isinstance(space, ScalableSpace) else ""
    return f"{space.name} ({knobs}{space.num_classes} classes)"


def _resized_dataset(dataset, input_shape: tuple[int, int, int], *, calibration_images: int):
    """The splits export checks with, resized (bilinear, antialiased) to ``input_shape``:
    the calibration subset of train, the validation subset and the full test split."""
    import torch
    import torch.nn.functional as F

    size = tuple(input_shape[1:])

    def resize(s: ImageSet) -> ImageSet:
        chunks = []
        for i in range(0, len(s), 1000):
            x = s.images[i:i + 1000].float()
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                              antialias=size[0] < x.shape[2] or size[1] < x.shape[3])
            chunks.append(x.round().clamp(0, 255).to(torch.uint8))
        images = torch.cat(chunks) if chunks else s.images.new_zeros((0, input_shape[0], *size))
        return ImageSet(images, s.labels)

    return dataclasses.replace(dataset, train=resize(dataset.train.subset(calibration_images,
                                                                          seed=1)),
                               val=resize(dataset.val.subset(VAL_IMAGES, seed=2)),
                               test=resize(dataset.test))


def _quantize(ckpt, deploy, fp32_path, target, calib, dataset, fp32_acc, meta, parity_images,
              say, calibrations=CALIBRATIONS) -> Int8Result:
    """Tries the calibration settings, picks the best on validation images (never on test),
    then checks the test accuracy drop."""
    val = dataset.val.subset(VAL_IMAGES, seed=2)
    fp32_val = onnx_accuracy(fp32_path, val)
    best = None
    with tempfile.TemporaryDirectory(prefix="mobile-nas-int8-") as tmp:
        for i, (method, per_channel) in enumerate(calibrations):
            t0 = time.perf_counter()
            candidate = Path(tmp) / f"{i}.onnx"
            quantize_int8(fp32_path, candidate, calib, method=method, per_channel=per_channel)
            acc = onnx_accuracy(candidate, val)
            label = f"{method}, {'per-channel' if per_channel else 'per-tensor'}"
            say(f"INT8 {label}: validation accuracy {acc:.4f} (fp32 {fp32_val:.4f}, "
                f"{time.perf_counter() - t0:.1f}s)")
            if best is None or acc > best[0]:
                best = (acc, label, candidate)
            if fp32_val - acc <= EARLY_STOP_DROP:
                break
        if best is None:
            raise ExportError("no INT8 calibration settings to try")
        with atomic_path(target) as tmp_target:
            shutil.copyfile(best[2], tmp_target)
    label = best[1]
    acc = onnx_accuracy(target, dataset.test)
    drop = fp32_acc - acc
    say(f"INT8 ({label} calibration on {len(calib)} train images): test accuracy {acc:.4f} "
        f"(fp32 {fp32_acc:.4f}, drop {100 * drop:.2f} points)")
    if drop > INT8_MAX_DROP:
        Path(target).unlink(missing_ok=True)
        raise ExportError(f"INT8 loses {100 * drop:.2f} points of test accuracy (more than "
                          f"{100 * INT8_MAX_DROP:g}) with the best calibration ({label}); "
                          f"the fp32 model {fp32_path} is fine to deploy")
    quant = (f"int8 static QDQ (onnxruntime), symmetric int8 weights ({label}), uint8 "
             f"activations, calibrated on {len(calib)} training images")
    usability = check_mobile_usability(target)
    say(f"INT8 onnxruntime mobile usability: {usability.summary()}")
    _rewrite_metadata(target, {**meta, "accuracy": f"{acc:.6f}", "quantization": quant,
                               "mobile_usability": usability.metadata_value()})
    check_onnx(target)
    par = parity(deploy, target, dataset.test.images[:parity_images])
    return Int8Result(path=str(target), test_accuracy=acc, accuracy_drop=drop,
                      calibration=label, calibration_images=len(calib),
                      max_abs_diff=par.max_abs_diff, top1_agreement=par.top1_agreement,
                      size_bytes=Path(target).stat().st_size,
                      mobile_usability=usability.to_json())


def _rewrite_metadata(path, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    set_metadata(model, metadata)
    atomic_write_bytes(path, model.SerializeToString())


def time_models(paths: Mapping[str, str | os.PathLike], *, runs: int = 100, threads: int = 1,
                warmup: int = 10) -> dict[str, TimingResult]:
    """Interleaved batch-1 onnxruntime timing of several ONNX files: each name's
    :class:`~mobile_nas.cost.latency.runner.TimingResult`. The sessions, the timing loop
    (``runs // 5`` rounds of 5 runs, wall clock) and the statistics are those of
    :mod:`mobile_nas.cost.latency.runner`.
    """
    sessions = {name: measure.load_session(p, threads=threads) for name, p in paths.items()}
    rounds = max(1, runs // 5)
    times = time_interleaved(sessions, warmup=warmup, rounds=rounds, runs_per_round=5)
    return {name: timing_result(t, clock="wall", threads=threads) for name, t in times.items()}


def export_timing(timings: Mapping[str, TimingResult], threads: int) -> ExportTiming:
    """The :class:`ExportTiming` of :func:`time_models`' ``fp32`` and ``int8`` results."""
    def model(r: TimingResult) -> ModelTiming:
        return ModelTiming(p50_ms=r.median_ms, p90_ms=r.p90_ms, mean_ms=r.mean_ms, runs=r.n)

    result: ExportTiming = {"threads": threads}
    if "fp32" in timings:
        result["fp32"] = model(timings["fp32"])
    if "int8" in timings:
        result["int8"] = model(timings["int8"])
    if "fp32" in result and "int8" in result:
        result["speedup"] = result["fp32"]["p50_ms"] / result["int8"]["p50_ms"]
    return result
