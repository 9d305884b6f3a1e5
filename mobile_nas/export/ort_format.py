"""ORT format (``.ort``) through onnxruntime's own converter, with the reduced-operator config.

``onnxruntime.tools.convert_onnx_models_to_ort`` (the same function as ``python -m
onnxruntime.tools.convert_onnx_models_to_ort``) writes the files onnxruntime Mobile and
minimal builds load. The optimization style is *Runtime*, which onnxruntime recommends when
NNAPI or CoreML will run the model: basic optimizations are applied, and the
hardware-specific ones are saved to be replayed at run time only on the nodes the NNAPI/CoreML
provider does not take (session option ``session.enable_saved_runtime_optimizations=1``).
Target platform ``arm``: no x86-only layouts baked in. The converter also writes the list of
operators the models need (``required_operators.config``), the file a reduced build of
onnxruntime takes with ``--include_ops_by_config``; one config covers every model converted
together.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mobile_nas.atomic import atomic_path
from mobile_nas.export.errors import ExportError

OPTIMIZATION_STYLE = "Runtime"
TARGET_PLATFORM = "arm"


@dataclass(frozen=True)
class OrtFiles:
    """What :func:`convert_to_ort` wrote: one ``.ort`` per ONNX file and one config."""

    models: dict[str, str]  # ONNX path → ORT path
    config: str


def ort_path_for(onnx_path: str | os.PathLike) -> Path:
    """``m.onnx`` → ``m.ort``."""
    return Path(onnx_path).with_suffix(".ort")


def config_path_for(onnx_path: str | os.PathLike) -> Path:
    """``m.onnx`` → ``m.required_operators.config``."""
    p = Path(onnx_path)
    return p.with_name(f"{p.stem}.required_operators.config")


def convert_to_ort(onnx_paths: list[str | os.PathLike], *,
                   config: str | os.PathLike | None = None) -> OrtFiles:
    """Converts ``onnx_paths`` together to ORT format beside each (``m.onnx`` → ``m.ort``)
    and writes their required-operators config to ``config`` (default: beside the first,
    ``<stem>.required_operators.config``). Writes are atomic. Raises :class:`ExportError`
    when onnxruntime cannot convert a model."""
    from onnxruntime.tools.convert_onnx_models_to_ort import (
        OptimizationStyle,
        convert_onnx_models_to_ort,
    )

    sources = [Path(p) for p in onnx_paths]
    if not sources:
        raise ExportError("nothing to convert to ORT format")
    config = Path(config) if config else config_path_for(sources[0])
    with tempfile.TemporaryDirectory(prefix="mobile-nas-ort-") as tmp:
        src_dir, out_dir = Path(tmp) / "onnx", Path(tmp) / "ort"
        src_dir.mkdir()
        names = []
        for i, src in enumerate(sources):  # distinct names even for files of other folders
            name = f"{i}_{src.stem}.onnx"
            shutil.copyfile(src, src_dir / name)
            names.append(name)
        log = io.StringIO()
        try:  # the converter prints progress on stdout; keep stdout for --json
            with contextlib.redirect_stdout(log), _quiet("ort_format_model.utils"):
                convert_onnx_models_to_ort(src_dir, output_dir=out_dir,
                                           optimization_styles=[OptimizationStyle.Runtime],
                                           target_platform=TARGET_PLATFORM)
        except Exception as exc:  # onnxruntime raises its own exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExportError(f"onnxruntime could not convert {', '.join(map(str, sources))} "
                              f"to ORT format: {first}") from None
        written = {}
        for src, name in zip(sources, names, strict=True):
            produced = out_dir / f"{Path(name).stem}.with_runtime_opt.ort"
            if not produced.is_file():
                raise ExportError(f"onnxruntime's converter wrote no ORT file for {src}")
            target = ort_path_for(src)
            with atomic_path(target) as tmp_target:
                shutil.copyfile(produced, tmp_target)
            written[str(src)] = str(target)
        produced_config = out_dir / "required_operators.with_runtime_opt.config"
        # the converter's header names its temporary files; name the delivered ones
        body = [line for line in produced_config.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        header = ["# Operators required by these ORT format models (onnxruntime "
                  "convert_onnx_models_to_ort,", f"# optimization style {OPTIMIZATION_STYLE}, "
                  f"target platform {TARGET_PLATFORM}); build onnxruntime with "
                  "--include_ops_by_config THIS_FILE:"]
        header += [f"# - {Path(p).name}" for p in written.values()]
        with atomic_path(config) as tmp_target:
            tmp_target.write_text("\n".join(header + body) + "\n")
    return OrtFiles(models=written, config=str(config))


@contextlib.contextmanager
def _quiet(name: str):
    """onnxruntime's tool loggers log at INFO on stderr; show only warnings."""
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(before)
