"""Reading a flat dataclass back from the JSON object its ``to_json`` wrote: every key
checked (none missing, none unknown) and plain values type-checked, so that a bad file is
one error line naming the key instead of a traceback where the value is first used."""

from __future__ import annotations

import math
from dataclasses import MISSING, fields
from typing import Any

#: Annotation (as written, ``from __future__ import annotations``) → accepted JSON types.
_PLAIN = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
          "dict": (dict,), "list": (list,)}


def record_kwargs(cls: type, data: Any, *, what: str, error: type[Exception]) -> dict[str, Any]:
    """The keyword arguments of dataclass ``cls`` in ``data`` (a dict from JSON), values as
    they are. Fields annotated with a plain type (``str``, ``int``, ``float``, ``bool``,
    ``dict``, ``list``, optionally ``| None``) are type-checked (numbers must be finite);
    others (nested records, containers) are the caller's to convert. Raises ``error`` with
    one line naming ``what`` and the bad key."""
    if not isinstance(data, dict):
        raise error(f"{what} must be a JSON object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise error(f"{what} has unknown keys {', '.join(map(repr, unknown))}")
    missing = [n for n, f in known.items() if n not in data
               and f.default is MISSING and f.default_factory is MISSING]
    if missing:
        raise error(f"{what} lacks {', '.join(map(repr, missing))}")
    for name, value in data.items():
        kinds = str(known[name].type).replace(" ", "").split("|")
        optional = "None" in kinds
        plain = [k for k in kinds if k != "None"]
        if len(plain) != 1 or plain[0] not in _PLAIN:
            continue
        if value is None and optional:
            continue
        kind = plain[0]
        ok = isinstance(value, _PLAIN[kind]) and (kind == "bool" or not isinstance(value, bool))
        if ok and kind in ("int", "float"):
            ok = math.isfinite(value)
        if not ok:
            raise error(f"{what}: {name!r} must be {kind}"
                        + (" or null" if optional else "") + f", got {value!r:.40}")
    return dict(data)
