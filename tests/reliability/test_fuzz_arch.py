"""Fuzzed architecture strings and JSON: every input parses or raises ArchError, nothing else."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mobile_nas.errors import ArchError, MobileNasError
from mobile_nas.space import Architecture, get_space, list_spaces
from mobile_nas.space.architecture import load_arch

TOKENS = ["ds", "mb3", "mb6", "mb9", "k3", "k5", "k4", "n1", "n2", "n0", "c16", "c24", "c999",
          "relu", "relu6", "hswish", "se", "se0.5", "", "|", "_", "x", "-1", "\x00", "ü"]


def _mutations(text: str, rng: np.random.Generator) -> list[str]:
    out = []
    for _ in range(40):
        chars = list(text)
        i = int(rng.integers(len(chars)))
        op = rng.integers(4)
        if op == 0:
            del chars[i]
        elif op == 1:
            chars.insert(i, chr(int(rng.integers(32, 127))))
        elif op == 2:
            chars[i] = chr(int(rng.integers(32, 127)))
        else:
            chars = chars[:i]
        out.append("".join(chars))
    return out


@pytest.mark.parametrize("name", sorted(list_spaces()))
def test_mutated_strings_parse_or_raise_arch_error(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    for k in range(25):
        for text in _mutations(space.sample(k).to_string(), rng):
            try:
                arch = space.decode(text)
            except ArchError as exc:
                assert str(exc) and "\n" not in str(exc)
            else:
                assert space.decode(arch.to_string()) == arch


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("_".join))
def test_token_soup_never_crashes(text):
    for name in ("fmnist28", "mobile224"):
        try:
            get_space(name).decode(text)
        except ArchError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12))
def test_fuzzed_json_raises_only_arch_error(data):
    try:
        Architecture.from_json(data, "fmnist28")
    except ArchError:
        pass


@pytest.mark.parametrize("content", ["", "{", "[]", "null", '{"arch": 5}', '{"space": 1}',
                                     '{"arch": "x", "space": "nope"}', "\xff\xfe"])
def test_corrupt_arch_files_are_one_clean_error(tmp_path, content):
    path = tmp_path / "arch.json"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(MobileNasError):
        load_arch(str(path), None)


def test_json_round_trip_survives_serialisation_of_every_space():
    for name in list_spaces():
        arch = get_space(name).sample(0)
        assert Architecture.from_json(json.loads(json.dumps(arch.to_json()))) == arch
