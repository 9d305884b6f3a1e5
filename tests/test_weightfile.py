"""The one weight-file helper: stamped atomic writes, one clean error per unusable file."""

import pickle

import pytest
import torch

from mobile_nas.errors import MobileNasError
from mobile_nas.weightfile import WeightFile


class _Err(MobileNasError):
    pass


class _RunsCode:
    def __reduce__(self):
        return (print, ("ran",))


THING = WeightFile("thing file", _Err, 3, kind="thing")


def test_torch_round_trip_is_stamped(tmp_path):
    THING.save(tmp_path / "t.pt", {"w": torch.arange(3), "schema_version": 1})
    data = THING.load(tmp_path / "t.pt")
    assert data["schema_version"] == 3 and data["kind"] == "thing"
    assert torch.equal(data["w"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["t.pt"]


def test_safetensors_round_trip_is_stamped(tmp_path):
    path = tmp_path / "t.safetensors"
    THING.save_safetensors(path, {"w": torch.ones(2, dtype=torch.float16)},
                           {"space": "s", "config": {"steps": 2}})
    tensors, meta = THING.load_safetensors(path)
    assert meta == {"space": "s", "config": {"steps": 2}, "format": "thing",
                    "schema_version": 3}
    assert tensors["w"].dtype == torch.float16
    THING.save(path, {})  # torch data under a .safetensors name is still read as such
    assert THING.load(path)["kind"] == "thing"


@pytest.mark.parametrize("case, fragment", [
    ("missing", "thing file '.*nope.pt' does not exist"),
    ("garbage", "is not a readable thing file \\(corrupt, truncated or another format"),
    ("other kind", "is not a mobile-nas thing file"),
    ("not a dict", "is not a mobile-nas thing file"),
    ("old schema", "has schema_version 2; this mobile-nas reads 3"),
    ("code", "refusing .*: it contains objects that would run code on load"),
    ("plain pickle with code", "run code on load"),
])
def test_unusable_files_are_one_line_of_the_kinds_error(tmp_path, case, fragment):
    path = tmp_path / "t.pt"
    if case == "missing":
        path = tmp_path / "nope.pt"
    elif case == "garbage":
        path.write_bytes(b"PK\x03\x04 not really a zip")
    elif case == "other kind":
        torch.save({"kind": "other", "schema_version": 3}, path)
    elif case == "not a dict":
        torch.save([1, 2], path)
    elif case == "old schema":
        torch.save({"kind": "thing", "schema_version": 2}, path)
    elif case == "code":
        torch.save({"kind": "thing", "x": _RunsCode()}, path)
    else:
        path.write_bytes(pickle.dumps({"x": _RunsCode()}))
    with pytest.raises(_Err, match=fragment) as info:
        THING.load(path)
    assert "\n" not in str(info.value)


def test_writing_into_a_missing_folder_is_one_line(tmp_path):
    with pytest.raises(_Err, match="cannot write thing file .*: folder .*nowhere.* does not"):
        THING.save(tmp_path / "nowhere" / "t.pt", {})
    with pytest.raises(_Err, match="does not exist"):
        THING.save_safetensors(tmp_path / "nowhere" / "t.safetensors", {}, {})
