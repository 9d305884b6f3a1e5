"""Device bundles: the table's ONNX models + manifest + standalone runner, and their import.

``make_bundle`` writes a zip with one ONNX model per layer key (exported by
:func:`.export.export_layer_onnx`, the path ``lut build`` uses), a few whole networks for
calibration, ``manifest.json`` (ids, files, input shapes, SHA-256 of every model, timing
protocol), ``run_lut.py`` (a verbatim copy of :mod:`.runner`: Python + numpy + onnxruntime)
and ``README.md`` (including ``onnxruntime_perf_test`` instructions).

``import_results`` turns the runner's ``results.json`` into a :class:`LatencyTable`. It only
parses JSON (and, with ``bundle``, reads ``manifest.json`` from the zip); nothing from the
bundle or the results is executed. :func:`load_results` reads either that JSON or the text
output of ``onnxruntime_perf_test``.

The whole networks of a bundle have a ``role``: ``fit`` networks calibrate the imported
table, ``held_out`` ones check it (:mod:`.calibrate`). The runner times them with the wall
clock (``protocol.arch_clock``) whatever clock times the layers, so the calibration maps the
table to the wall-clock median users measure. Results of a bundle with too few networks
import uncalibrated (``metadata.calibration_skipped`` says why).

:func:`bundle_lut` and :func:`import_lut` are ``lut bundle`` and ``lut import`` as library
pipelines (which networks and layers to bundle; import and save), with typed results.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mobile_nas import __version__
from mobile_nas.atomic import atomic_path
from mobile_nas.cost.latency import runner
from mobile_nas.cost.latency.build import layer_keys
from mobile_nas.cost.latency.calibrate import (
    DEFAULT_FIT_NETWORKS,
    DEFAULT_HELD_OUT,
    MIN_FIT_NETWORKS,
    MIN_HELD_OUT,
    AnchoredMeasurement,
    CalibrationPlan,
    calibrate_table,
    plan_calibration,
)
from mobile_nas.cost.latency.errors import BundleError
from mobile_nas.cost.latency.export import (
    export_arch_onnx,
    export_layer_onnx,
    layer_input_shape,
)
from mobile_nas.cost.latency.sentinel import sentinel_onnx
from mobile_nas.cost.latency.settings import DEFAULTS
from mobile_nas.cost.latency.statistic import LatencyStatistic
from mobile_nas.cost.latency.table import LatencyTable, LayerLatency
from mobile_nas.errors import ArchError, SettingError
from mobile_nas.progress import progress_bar
from mobile_nas.space import get_space
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.layers import LayerKey
from mobile_nas.torch_onnx import DEFAULT_OPSET

BUNDLE_KIND = "mobile-nas-lut-bundle"
ARCH_PREFIX = "arch:"
#: The anchor model's id in a manifest (runner.ANCHOR_ID, the same string).
ANCHOR_ID = runner.ANCHOR_ID


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """The canonical serialization whose SHA-256 results files quote."""
    return (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()


def make_bundle(space: SearchSpace, keys: Sequence[LayerKey], out: str | os.PathLike[str], *,
                archs: Sequence[Architecture] = (), held_out: Sequence[Architecture] = (),
                opset: int = DEFAULT_OPSET, warmup: int = 5, rounds: int = 10,
                runs_per_round: int = 3, opt_level: str = "all", clock: str = "wall",
                statistic: str = "median", seed: int | None = None,
                arch_repeats: int = 3, progress: bool = True) -> dict[str, Any]:
    """Writes the bundle zip atomically; returns its manifest. ``archs`` are the whole
    networks the imported table is calibrated on, ``held_out`` those that check it (their
    layers should be among ``keys``); ``seed`` is recorded (it drew the random ones).
    ``arch_repeats``: separate interleaved passes over each chunk of whole networks on the
    device (the median fraction of the anchor is kept), as ``lut build`` times its
    calibration networks."""
    out = Path(out)
    if not out.parent.is_dir():
        raise BundleError(f"output folder {out.parent} does not exist")
    models: list[dict[str, Any]] = []
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        roles = {a: "fit" for a in archs}
        for a in held_out:
            roles.setdefault(a, "held_out")
        items = [(k, None) for k in dict.fromkeys(keys)] + [(None, a) for a in roles]
        for i, (key, arch) in enumerate(progress_bar(items, desc="lut bundle", unit="model",
                                                     disable=not progress)):
            if key is not None:
                data = export_layer_onnx(key, opset=opset)
                entry = {"id": key.id, "kind": "layer", "file": f"models/{i:05d}.onnx",
                         "input_shape": list(layer_input_shape(key))}
            else:
                data = export_arch_onnx(arch, opset=opset)
                entry = {"id": ARCH_PREFIX + arch.to_string(), "kind": "arch",
                         "role": roles[arch], "file": f"archs/{i:05d}.onnx",
                         "input_shape": [1, *space.input_shape]}
            entry["sha256"] = runner.sha256_bytes(data)
            zf.writestr(entry["file"], data)
            models.append(entry)
        anchor = sentinel_onnx(opset)  # timed in every chunk on the device (the tables' anchor)
        models.append({"id": ANCHOR_ID, "kind": "anchor", "file": "anchor.onnx",
                       "input_shape": [1, 16, 32, 32], "sha256": runner.sha256_bytes(anchor)})
        zf.writestr("anchor.onnx", anchor)
        manifest = {
            "schema_version": runner.MANIFEST_SCHEMA_VERSION, "kind": BUNDLE_KIND,
            "space": space.name, "opset": opset, "mobile_nas_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "protocol": {"warmup": warmup, "rounds": rounds, "runs_per_round": runs_per_round,
                         "opt_level": opt_level, "clock": clock, "statistic": statistic,
                         "arch_clock": "wall", "arch_repeats": arch_repeats},
            "calibration_seed": seed, "models": models,
        }
        zf.writestr("manifest.json", manifest_bytes(manifest))
        zf.writestr("run_lut.py", Path(runner.__file__).read_text())
        zf.writestr("README.md", _README.format(space=space.name, n=len(models)))
    return manifest


def _check_names(zf: zipfile.ZipFile, source: str) -> None:
    try:
        runner.check_archive(zf, source)
    except runner.RunnerError as exc:
        raise BundleError(str(exc)) from None


def read_manifest(bundle: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes]:
    """The manifest of a bundle zip (checks every entry name; extracts nothing)."""
    try:
        with zipfile.ZipFile(bundle) as zf:
            _check_names(zf, str(bundle))
            raw = zf.read("manifest.json")
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{bundle}: not a readable bundle zip ({exc})") from None
    except KeyError:
        raise BundleError(f"{bundle}: no manifest.json in the bundle") from None
    try:
        return json.loads(raw), raw
    except json.JSONDecodeError as exc:
        raise BundleError(f"{bundle}: corrupt manifest.json ({exc})") from None


def extract_bundle(bundle: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extracts a bundle, refusing entries that would land outside ``dest``."""
    try:
        with zipfile.ZipFile(bundle) as zf:
            _check_names(zf, str(bundle))
        return runner.safe_extract(bundle, dest)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BundleError(f"{bundle}: not a readable bundle zip ({exc})") from None
    except runner.RunnerError as exc:
        raise BundleError(str(exc)) from None


def import_results(results_path: str | os.PathLike[str], *,
                   bundle: str | os.PathLike[str] | None = None,
                   space: SearchSpace | None = None,
                   data: dict[str, Any] | None = None) -> LatencyTable:
    """Validates a device's ``results.json`` against its manifest and builds the table.

    Checks: schema and kind, the manifest hash (against ``bundle``'s manifest when given),
    every manifest model present and no other, each model's SHA-256 as run on the device,
    and positive finite times. Whole networks in the bundle calibrate the table.
    """
    src = str(results_path)
    try:
        if data is None:
            data = json.loads(Path(results_path).read_text())
    except OSError as exc:
        raise BundleError(f"cannot read results file {src}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{src} is not valid JSON (corrupt or truncated?): {exc}") from None
    if not isinstance(data, dict) or data.get("kind") != "mobile-nas-lut-results":
        raise BundleError(f"{src} is not a results file of run_lut.py (kind "
                          f"{data.get('kind') if isinstance(data, dict) else None!r})")
    if data.get("schema_version") != runner.RESULTS_SCHEMA_VERSION:
        raise BundleError(f"{src}: unsupported results schema_version "
                          f"{data.get('schema_version')!r}")
    manifest = data.get("manifest")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("models"), list):
        raise BundleError(f"{src}: the results carry no bundle manifest")
    if runner.sha256_bytes(manifest_bytes(manifest)) != data.get("manifest_sha256"):
        raise BundleError(f"{src}: the embedded manifest does not match its manifest_sha256")
    if bundle is not None:
        _, raw = read_manifest(bundle)
        if runner.sha256_bytes(raw) != data["manifest_sha256"]:
            raise BundleError(f"{src} was measured on another bundle than {bundle} "
                              f"(manifest SHA-256 differs)")
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise BundleError(f"{src}: no 'entries' object")
    expected = {m["id"]: m for m in manifest["models"]}
    missing = [i for i in expected if i not in entries]
    extra = [i for i in entries if i not in expected]
    if missing:
        raise BundleError(f"{src}: {len(missing)} model(s) of the manifest have no result, "
                          f"e.g. {missing[0]!r} (rerun run_lut.py with --resume)")
    if extra:
        raise BundleError(f"{src}: result {extra[0]!r} is not in the bundle manifest")
    anchored = any(m.get("kind") == "anchor" for m in manifest["models"])
    layers: dict[str, LayerLatency] = {}
    arch_ms: dict[str, tuple[str, LayerLatency]] = {}
    anchor_of: dict[str, float] = {}
    for mid, m in expected.items():
        e = entries[mid]
        if not isinstance(e, dict) or e.get("sha256") != m.get("sha256"):
            raise BundleError(f"{src}: model {m.get('file')!r} ({mid}) was not the bundle's "
                              f"(SHA-256 mismatch)")
        stats = _stats(e, mid, src)
        if anchored and m["kind"] != "anchor":
            a = e.get("anchor_ms")
            if not (isinstance(a, (int, float)) and not isinstance(a, bool)
                    and math.isfinite(a) and a > 0):
                raise BundleError(f"{src}: {mid!r} has no anchor timing (results of an older "
                                  f"run_lut.py?); time the bundle again with its own "
                                  f"run_lut.py, which times the anchor in every chunk")
            anchor_of[mid] = float(a)
        if m["kind"] == "layer":
            try:
                LayerKey.from_id(mid)
            except ArchError:
                raise BundleError(f"{src}: malformed layer key {mid!r}") from None
            if anchored:
                stats = dataclasses.replace(stats, anchor_fraction=(
                    stats.value((manifest.get("protocol") or {}).get("statistic", "median"))
                    / anchor_of[mid]))
            layers[mid] = stats
        elif m["kind"] == "arch":
            arch_ms[mid[len(ARCH_PREFIX):]] = (str(m.get("role", "fit")), stats)
    md = data.get("metadata") or {}
    meta = {**{k: v for k, v in md.items() if isinstance(v, (str, int, float, bool))},
            "opset": manifest.get("opset"), "source": "mobile-nas lut import",
            "statistic": (manifest.get("protocol") or {}).get("statistic", "median"),
            "bundle_manifest_sha256": data["manifest_sha256"],
            "bundle_created": manifest.get("created"),
            "imported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "mobile_nas_version": __version__, "num_keys": len(layers)}
    table = LatencyTable(space=str(manifest.get("space")), metadata=meta, entries=layers)
    proto = manifest.get("protocol") or {}
    # networks are timed with the wall clock by bundles that say so; older bundles timed
    # them like the layers (then the calibration targets the layers' clock and statistic)
    target = LatencyStatistic(str(proto["arch_clock"]), "median") if "arch_clock" in proto \
        else table.layer_statistic
    fit = {a: target.of(st) for a, (r, st) in arch_ms.items() if r == "fit"}
    held = {a: target.of(st) for a, (r, st) in arch_ms.items() if r == "held_out"}
    if len(fit) >= MIN_FIT_NETWORKS and len(held) >= MIN_HELD_OUT:
        anchors = {a: anchor_of[ARCH_PREFIX + a] for a in arch_ms} if anchored else None
        return _calibrate_from(table, fit, held, space, target=target, anchors=anchors,
                               seed=manifest.get("calibration_seed"))
    if arch_ms:
        table = table.with_metadata(calibration_skipped=(
            f"the bundle has {len(fit)} networks to fit and {len(held)} held out; a "
            f"calibration needs {MIN_FIT_NETWORKS} and {MIN_HELD_OUT} (make the bundle with "
            f"this release's 'mobile-nas lut bundle')"))
    return table


def perf_text_to_results(text_path: str | os.PathLike[str], bundle: str | os.PathLike[str], *,
                         device: str = "unknown") -> dict[str, Any]:
    """Converts ``FILE MEDIAN_MS`` lines (``onnxruntime_perf_test`` P50 per bundle file) into
    a results dict for :func:`import_results`; hashes are those of the bundle's files."""
    manifest, raw = read_manifest(bundle)
    by_file = {m["file"]: m for m in manifest.get("models", [])}
    entries: dict[str, dict[str, Any]] = {}
    try:
        lines = Path(text_path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"cannot read {text_path}: {exc}") from None
    with zipfile.ZipFile(bundle) as zf:
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            name = parts[0].lstrip("./")
            if len(parts) != 2 or name not in by_file:
                raise BundleError(f"{text_path}:{n}: expected 'FILE MEDIAN_MS' with a file of "
                                  f"the bundle, got {line.strip()!r}")
            try:
                ms = float(parts[1])
            except ValueError:
                raise BundleError(f"{text_path}:{n}: {parts[1]!r} is not a number") from None
            m = by_file[name]
            entries[m["id"]] = {"median_ms": ms, "iqr_ms": 0.0, "n": 1,
                                "sha256": runner.sha256_bytes(zf.read(name))}
    anchor = entries.get(ANCHOR_ID)
    if anchor is not None:  # one timing of the anchor in the same session of the tool
        for mid, e in entries.items():
            if mid != ANCHOR_ID:
                e["anchor_ms"] = anchor["median_ms"]
    return {"schema_version": runner.RESULTS_SCHEMA_VERSION, "kind": "mobile-nas-lut-results",
            "manifest_sha256": runner.sha256_bytes(raw), "manifest": manifest,
            "metadata": {"device": device, "runner": "onnxruntime_perf_test",
                         "threads": 1, "provider": "cpu", "clock": "wall"},
            "entries": entries}


def _stats(e: dict[str, Any], mid: str, src: str) -> LayerLatency:
    try:
        med, iqr, n, mn = e["median_ms"], e["iqr_ms"], e["n"], e.get("min_ms", e["median_ms"])
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                   for x in (med, iqr, mn)):
            raise ValueError("times must be finite numbers")
        return LayerLatency(median_ms=float(med), iqr_ms=float(iqr), n=n, min_ms=float(mn))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{src}: bad timing for {mid!r}: {exc}") from None


def _calibrate_from(table: LatencyTable, fit: dict[str, float], held: dict[str, float],
                    space: SearchSpace | None, *, target: LatencyStatistic,
                    anchors: dict[str, float] | None, seed: int | None) -> LatencyTable:
    """The device's whole networks calibrate the table as ``lut build`` does
    (:func:`~.calibrate.calibrate_table`): with ``anchors`` (each network's anchor time in
    its chunk) in fractions of the anchor, converted to ms at the anchor's median."""
    space = space or get_space(table.space)
    measured = {**fit, **held}
    plan = CalibrationPlan(fit=tuple(space.decode(a) for a in fit),
                           held_out=tuple(space.decode(a) for a in held), seed=seed or 0)

    def measure(archs: Sequence[Architecture]) -> Sequence[float] | AnchoredMeasurement:
        if anchors is None:
            return [measured[a.to_string()] for a in archs]
        anchor_ms = float(np.median(list(anchors.values())))
        return AnchoredMeasurement(
            measured_ms=tuple(measured[a.to_string()] / anchors[a.to_string()] * anchor_ms
                              for a in archs), anchor_ms=anchor_ms)

    cal_table = calibrate_table(table, plan, measure=measure)
    cal = cal_table.calibration
    if cal is not None and cal.target != target:
        cal_table = cal_table.with_calibration(dataclasses.replace(cal, target=target,
                                                                   seed=seed))
    elif cal is not None:
        cal_table = cal_table.with_calibration(dataclasses.replace(cal, seed=seed))
    return cal_table


def load_results(path: str | os.PathLike[str], *, bundle: str | os.PathLike[str] | None = None,
                 device: str = "unknown") -> LatencyTable:
    """The table of a device's results: ``run_lut.py``'s JSON, or (recognised by its first
    byte) ``FILE MEDIAN_MS`` text lines of ``onnxruntime_perf_test``, which need the
    ``bundle`` they were measured on (``device`` names the device for them)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()[:1]
    except OSError as exc:
        raise BundleError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head in (b"{", b"[", b""):
        return import_results(path, bundle=bundle)
    if bundle is None:
        raise SettingError("bundle", "{path} is not JSON; text results from "
                           "onnxruntime_perf_test need {what}", path=path)
    return import_results(path, bundle=bundle,
                          data=perf_text_to_results(path, bundle, device=device))


@dataclasses.dataclass(frozen=True)
class LutBundleResult:
    """What ``lut bundle`` wrote: the bundle at ``path`` (``size`` bytes) of space ``space``
    with ``layer_models`` layer models, the whole networks the imported table is calibrated
    on (``fit``) and those that check it (``held_out``), and its ``manifest``."""

    path: str
    space: str
    layer_models: int
    fit: tuple[Architecture, ...]
    held_out: tuple[Architecture, ...]
    size: int
    manifest: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"bundle": self.path, "space": self.space, "layer_models": self.layer_models,
                "arch_models": len(self.fit) + len(self.held_out),
                "fit_models": len(self.fit), "held_out_models": len(self.held_out),
                "bytes": self.size, "manifest_models": len(self.manifest["models"])}


def bundle_lut(space: SearchSpace, out: str | os.PathLike[str], *,
               archs: Sequence[Architecture] = (), n_fit: int = DEFAULT_FIT_NETWORKS,
               n_held_out: int = DEFAULT_HELD_OUT, seed: int = 0,
               rounds: int = DEFAULTS.rounds, runs_per_round: int = DEFAULTS.runs_per_round,
               clock: str = "wall", statistic: str = "median",
               progress: bool = True) -> LutBundleResult:
    """``lut bundle`` as a library pipeline: writes the bundle of the layers of ``archs`` (or
    of the whole space) to ``out`` with :func:`make_bundle`.

    ``n_fit`` whole networks calibrate the imported table and ``n_held_out`` others check
    it, chosen by :func:`~.calibrate.plan_calibration` (``archs`` first, else the space's
    references, then random networks drawn with ``seed``); with ``archs``, the layers of
    the random ones are bundled too. ``n_fit`` 0: no whole networks (the import is
    uncalibrated)."""
    fit: tuple[Architecture, ...] = ()
    held: tuple[Architecture, ...] = ()
    sampled: tuple[Architecture, ...] = ()
    if n_fit:
        plan = plan_calibration(space, include=archs, n_fit=n_fit, n_held_out=n_held_out,
                                seed=seed, references=not archs)
        fit, held = plan.fit, plan.held_out
        sampled = plan.sampled if archs else ()
    keys = layer_keys(space, [*archs, *sampled])
    manifest = make_bundle(space, keys, out, archs=fit, held_out=held, rounds=rounds,
                           runs_per_round=runs_per_round, clock=clock, statistic=statistic,
                           seed=seed, progress=progress)
    return LutBundleResult(path=os.fspath(out), space=space.name, layer_models=len(keys),
                           fit=fit, held_out=held, size=os.path.getsize(out),
                           manifest=manifest)


@dataclasses.dataclass(frozen=True)
class LutImportResult:
    """What ``lut import`` wrote: the device's ``table``, saved at ``path``."""

    table: LatencyTable
    path: str

    def to_json(self) -> dict[str, Any]:
        table = self.table
        md, cal = table.metadata, table.calibration
        return {"table": self.path, "space": table.space, "num_keys": len(table),
                "device": md.get("device"), "cpu": md.get("cpu"),
                "onnxruntime": md.get("onnxruntime"), "calibrated": cal is not None,
                "predicts": table.predicts,
                "held_out_check": cal.held_out.to_json() if cal and cal.held_out else None,
                "calibration_skipped": md.get("calibration_skipped")}


def import_lut(results: str | os.PathLike[str], out: str | os.PathLike[str], *,
               bundle: str | os.PathLike[str] | None = None,
               device: str = "unknown") -> LutImportResult:
    """``lut import`` as a library pipeline: the table of a device's ``results``
    (:func:`load_results`), written to ``out``."""
    table = load_results(results, bundle=bundle, device=device)
    table.save(out)
    return LutImportResult(table=table, path=os.fspath(out))


_README = """# mobile-nas latency bundle ({space}, {n} models)

Time these ONNX models on the target device and bring `results.json` back:

    pip install numpy onnxruntime        # nothing else is needed
    python run_lut.py . --out results.json --threads 1    # here, in the extracted folder
    # (or, beside the zip: python run_lut.py bundle.zip ...)
    # killed? run it again with --resume: finished chunks are kept

then, on the machine with mobile-nas:

    mobile-nas lut import results.json --bundle bundle.zip --out my_device.json

`manifest.json` lists every model: its id (a layer key, or `arch:<string>` for the whole
networks used to calibrate the table), file, input shape (float32, N x C x H x W) and SHA-256.
The import refuses results whose hashes or keys do not match the manifest.

## Without Python: onnxruntime_perf_test

onnxruntime's own benchmark tool (built with onnxruntime, e.g. for Android) can time the same
files. For each model, run it with one thread and the graph optimizations on, e.g.

    for f in anchor.onnx models/*.onnx archs/*.onnx; do
      ms=$(onnxruntime_perf_test -e cpu -x 1 -y 1 -o 99 -m times -r 100 -I "$f" \\
           | awk '/P50 Latency/ {{print $3 * 1000}}')
      echo "$f $ms" >> perf_results.txt
    done

and import the "FILE MEDIAN_MS" lines with

    mobile-nas lut import perf_results.txt --bundle bundle.zip --out my_device.json
"""
