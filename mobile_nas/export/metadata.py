"""What goes into an exported model's ``metadata_props``."""

from __future__ import annotations

import json
import os

from mobile_nas import __version__
from mobile_nas.cost.latency.source import open_table
from mobile_nas.errors import MobileNasError

#: Keys every exported model carries (``latency_ms`` and ``latency_statistic``, what it
#: predicts, only when a latency table covers it).
REQUIRED_KEYS = ("arch", "space", "accuracy", "input_format", "labels", "mobile_nas_version")


def input_format(input_shape, mean, std, *, batch: str = "N") -> str:
    c, h, w = input_shape
    return (f"float32 NCHW [{batch},{c},{h},{w}], pixels scaled to [0,1]; normalization "
            f"(mean={[round(m, 6) for m in mean]}, std={[round(s, 6) for s in std]}) is inside "
            f"the graph; output: logits [{batch},num_classes]")


def model_metadata(ckpt, *, accuracy: float, latency_ms: float | None,
                   latency_statistic: str | None = None, profile: str = "server",
                   extra: dict | None = None) -> dict[str, str]:
    """Metadata of checkpoint ``ckpt``; ``accuracy`` is the test accuracy as a fraction;
    ``latency_statistic`` names what ``latency_ms`` predicts (e.g. ``"wall-clock median"``).
    ``profile``: ``server`` (dynamic batch N) or ``mobile`` (batch 1, fixed shapes)."""
    shape = ckpt.dataset.get("input_shape") or ckpt.architecture().search_space.input_shape
    batch = "1" if profile == "mobile" else "N"
    meta = {"arch": ckpt.arch, "space": ckpt.space, "accuracy": f"{accuracy:.6f}",
            "input_format": input_format(shape, ckpt.mean, ckpt.std, batch=batch),
            "profile": profile,
            "labels": json.dumps(list(ckpt.classes)), "mobile_nas_version": __version__,
            "dataset": str(ckpt.dataset.get("name", ""))}
    if latency_ms is not None:
        meta["latency_ms"] = f"{latency_ms:.4f}"
        if latency_statistic:
            meta["latency_statistic"] = latency_statistic
    meta.update({k: str(v) for k, v in (extra or {}).items()})
    return meta


def predicted_latency(arch, table_path: str | os.PathLike | None = None) -> dict | None:
    """``{"latency_ms", "statistic", "table"}`` from the given or shipped latency table of
    ``arch``'s space (``statistic``: what the table predicts, e.g. ``"wall-clock median"``, or
    ``"cpu-clock min"`` for a legacy shipped table), or None when there is no table or it
    lacks layers of ``arch``."""
    try:
        source = open_table(arch.space, table_path)
        if source is None:
            return None
        prediction = source.predict(arch)
    except MobileNasError:
        if table_path is not None:
            raise
        return None
    return {"latency_ms": float(prediction.total_ms), "statistic": prediction.statistic,
            "table": str(source.path)}
