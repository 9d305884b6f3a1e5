"""record_kwargs: a dataclass read back from JSON, every bad key one error line."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mobile_nas.jsonrecord import record_kwargs


class BadFile(Exception):
    pass


@dataclass(frozen=True)
class Rec:
    name: str
    n: int
    x: float
    flag: bool
    note: str | None = None
    extra: dict | None = None
    items: list[int] = field(default_factory=list)  # not plain: the caller converts


def _read(data):
    return record_kwargs(Rec, data, what="rec", error=BadFile)


def test_good_records():
    assert _read({"name": "a", "n": 1, "x": 2, "flag": False}) == {
        "name": "a", "n": 1, "x": 2, "flag": False}
    assert _read({"name": "a", "n": 1, "x": 0.5, "flag": True, "note": None,
                  "items": ["not checked"]})["items"] == ["not checked"]


@pytest.mark.parametrize("data, message", [
    ([], "rec must be a JSON object, got list"),
    ({"n": 1, "x": 1.0, "flag": True}, "rec lacks 'name'"),
    ({"name": "a", "n": 1, "x": 1.0, "flag": True, "typo": 1}, "rec has unknown keys 'typo'"),
    ({"name": "a", "n": 1.5, "x": 1.0, "flag": True}, "rec: 'n' must be int, got 1.5"),
    ({"name": "a", "n": True, "x": 1.0, "flag": True}, "rec: 'n' must be int, got True"),
    ({"name": "a", "n": 1, "x": float("inf"), "flag": True}, "rec: 'x' must be float, got inf"),
    ({"name": "a", "n": 1, "x": 1.0, "flag": 1}, "rec: 'flag' must be bool, got 1"),
    ({"name": None, "n": 1, "x": 1.0, "flag": True}, "rec: 'name' must be str, got None"),
    ({"name": "a", "n": 1, "x": 1.0, "flag": True, "note": 3},
     "rec: 'note' must be str or null, got 3"),
    ({"name": "a", "n": 1, "x": 1.0, "flag": True, "extra": []},
     "rec: 'extra' must be dict or null, got []"),
])
def test_bad_records_are_one_line(data, message):
    with pytest.raises(BadFile) as info:
        _read(data)
    assert str(info.value) == message
