"""Pretrained weight-sharing supernets shipped with the package, as OFA ships its networks.

``<space>_supernet.safetensors`` holds a trained supernet's weights (stored as float16, loaded
as float32) and, in the safetensors metadata, what it is: space, training settings, the dataset
and train/validation split it saw, its measured rank fidelity against the stand-alone ground
truth, and the command that retrains it. Nothing in the file is executed when it loads.

``search`` scores with the shipped supernet of its space by default when the run validates on
the same split (same dataset and ``--seed``); otherwise, or with ``--train-supernet``, it trains
a fresh one.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

FORMAT = "mobile-nas-supernet"
SCHEMA_VERSION = 1


def pretrained_supernet_path(space_name: str) -> Path | None:
    """The shipped supernet file of ``space_name``, or None when none ships."""
    path = Path(str(files(__package__).joinpath(f"{space_name}_supernet.safetensors")))
    return path if path.is_file() else None


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of a supernet safetensors file, JSON values decoded."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        raw = fh.metadata() or {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
