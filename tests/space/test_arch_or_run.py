"""ARCH as commands take it: any spelling of the space, a RUN_DIR holding best.json."""

import json

import pytest

from mobile_nas.errors import ArchError, SpaceError
from mobile_nas.space import canonical_space_name, get_space, load_arch_or_run


def test_canonical_space_name():
    assert canonical_space_name(None) is None
    assert canonical_space_name("fmnist28") == "fmnist28"
    assert canonical_space_name("nb201@n1-f8-r28-c1-k10") == "nb201@n1-f8-1x28x28-k10"
    with pytest.raises(SpaceError, match="unknown search space 'nope'"):
        canonical_space_name("nope")


def test_run_dir_means_its_best_json(tmp_path):
    arch = get_space("fmnist28").sample(0)
    (tmp_path / "best.json").write_text(json.dumps({"space": "fmnist28",
                                                    "arch": arch.to_string()}))
    assert load_arch_or_run(str(tmp_path), None) == arch
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchError, match="has no best.json"):
        load_arch_or_run(str(tmp_path / "empty"), None)
    assert load_arch_or_run("fmnist28_mnasnet", None).space == "fmnist28"


def test_json_file_recording_the_canonical_name_matches_another_spelling(tmp_path):
    space = get_space("nb201@n1-f8-r28-c1-k10")
    arch = space.sample(1)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(arch.to_json()))
    assert load_arch_or_run(str(path), "nb201@n1-f8-r28-c1-k10") == arch


def test_overlong_arch_strings_are_not_taken_for_folders():
    text = "|".join(["ds_k3_n1_c16_relu"] * 300)  # longer than a file name may be
    with pytest.raises(ArchError):
        load_arch_or_run(text, "fmnist28")
