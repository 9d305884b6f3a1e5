"""Lets the reliability suite report what it observed: with ``MOBILE_NAS_RECORD`` set to a
JSON-lines path (``benchmarks/reliability.py`` sets it), each call appends one record."""

from __future__ import annotations

import json
import os
from typing import Any


def record(kind: str, **data: Any) -> None:
    path = os.environ.get("MOBILE_NAS_RECORD")
    if not path:
        return
    with open(path, "a") as f:
        f.write(json.dumps({"kind": kind, **data}, default=str) + "\n")
