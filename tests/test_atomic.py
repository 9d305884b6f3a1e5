import json
import os

import pytest

from mobile_nas.atomic import atomic_path, atomic_write_json


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_a_new_file_gets_the_modes_open_would_give_it_and_a_replaced_one_keeps_its_own(
        tmp_path):
    import stat

    from mobile_nas import atomic

    old = os.umask(0o027)
    try:
        atomic.atomic_write_text(tmp_path / "new.json", "{}")  # not mkstemp's private 0600
        assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640
        (tmp_path / "shared.json").write_text("old")
        os.chmod(tmp_path / "shared.json", 0o664)
        atomic.atomic_write_text(tmp_path / "shared.json", "new")
        assert stat.S_IMODE((tmp_path / "shared.json").stat().st_mode) == 0o664
        assert (tmp_path / "shared.json").read_text() == "new"
    finally:
        os.umask(old)
