import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobile_nas.errors import ArchError
from mobile_nas.space import Architecture, get_space, load_arch

PRESETS = ["fmnist28", "mobile224"]


@pytest.mark.parametrize("name", PRESETS)
def test_string_and_json_round_trip_for_many_samples(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(300):
        arch = space.sample(rng)
        text = arch.to_string()
        assert space.decode(text) == arch
        assert space.decode(text).to_string() == text
        data = json.loads(json.dumps(arch.to_json()))
        assert Architecture.from_json(data) == arch
        assert hash(Architecture.from_json(data)) == hash(arch)


@pytest.mark.parametrize("name", PRESETS)
def test_round_trip_property(name):
    space = get_space(name)

    @settings(max_examples=150, deadline=None)
    @given(st.tuples(*[st.integers(0, len(d) - 1) for d in space.decisions]))
    def check(indices):
        arch = space.from_indices(indices)
        assert arch.indices() == tuple(indices)
        assert space.decode(arch.to_string()) == arch

    check()


def test_architecture_is_immutable_and_hashable():
    arch = get_space("fmnist28").sample(1)
    with pytest.raises(AttributeError):
        arch.values = ()  # type: ignore[misc]
    assert len({arch, get_space("fmnist28").sample(1)}) == 1


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("mb6_k3_n1_c16_relu", "4 stages"),
        ("mb6_k4_n1_c16_relu|mb6_k3_n1_c24_relu|mb6_k3_n1_c40_relu|mb6_k3_n1_c64_relu", "'k4'"),
        ("mb6_k3_n1_c16_relu|mb6_k3_n1_c24_relu|mb6_k3_n1_c40_relu|mb6_k3_n1_c65_relu",
         "'c65'"),
        ("mb6_k3_n1_c16_relu|mb6_k3_n1_c24_bogus|mb6_k3_n1_c40_relu|mb6_k3_n1_c64_relu",
         "'bogus'"),
        ("mb6_k3_n1_c16_relu|mb6_k3_c24_relu|mb6_k3_n1_c40_relu|mb6_k3_n1_c64_relu", "layers"),
        ("mb6_k3_k5_n1_c16_relu|mb6_k3_n1_c24_relu|mb6_k3_n1_c40_relu|mb6_k3_n1_c64_relu",
         "repeats"),
        ("mb6_k3_n1_c16_relu6|mb6_k3_n1_c24_relu|mb6_k3_n1_c40_relu|mb6_k3_n1_c64_relu",
         "'relu6'"),
        ("mb4_k3_n1_c16_relu|mb6_k3_n1_c24_relu|mb6_k3_n1_c40_relu|mb6_k3_n1_c64_relu", "'mb4'"),
    ],
)
def test_malformed_strings_name_the_offending_token(text, fragment):
    with pytest.raises(ArchError) as info:
        get_space("fmnist28").decode(text)
    assert fragment in str(info.value)


def test_out_of_space_error_lists_allowed_values():
    text = "mb6_k9_n1_c16_relu|mb6_k3_n1_c24_relu|mb6_k3_n1_c40_relu|mb6_k3_n1_c64_relu"
    with pytest.raises(ArchError, match="allowed kernel: k3, k5, k7"):
        get_space("fmnist28").decode(text)


def test_json_errors():
    with pytest.raises(ArchError):
        Architecture.from_json({"arch": 3})
    with pytest.raises(ArchError, match="from space"):
        Architecture.from_json({"space": "mobile224", "arch": "x"}, space="fmnist28")


def test_load_arch_accepts_reference_names_files_and_strings(tmp_path):
    ref = load_arch("mnasnet1_0", None)
    assert ref.space == "mobile224"
    path = tmp_path / "a.json"
    path.write_text(json.dumps(ref.to_json()))
    assert load_arch(str(path), None) == ref
    assert load_arch(ref.to_string(), "mobile224") == ref
    with pytest.raises(ArchError, match="lives in space"):
        load_arch("mnasnet1_0", "fmnist28")
    with pytest.raises(ArchError, match="does not exist"):
        load_arch(str(tmp_path / "missing.json"), None)
