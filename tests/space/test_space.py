
import numpy as np
import pytest

from mobile_nas.errors import ArchError, RegistryError, SpaceError
from mobile_nas.registry import Registry
from mobile_nas.space import LayerKey, get_space, list_spaces


def test_presets_are_registered():
    assert {"fmnist28", "mobile224"} <= set(list_spaces())
    assert list_spaces("fm*") == ["fmnist28"]
    with pytest.raises(SpaceError, match="known: .*fmnist28"):
        get_space("nope")


def test_registry_refuses_duplicates():
    reg: Registry[int] = Registry("thing")
    reg.register("a", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a", 2)


#: the number of architectures, from the choices per stage (op x kernel x layers x channels
#: x activation x SE): fmnist28 3*3*2*2*2*2 = 144 for its first stage, 3*3*3*3*2*2 = 324 for
#: each of the other three (README: 4.898e+09); mobile224 324, 648, 864, 864, 864, 648, 324
SIZES = {"fmnist28": 144 * 324 ** 3, "mobile224": 324 ** 2 * 648 ** 2 * 864 ** 3}


@pytest.mark.parametrize("name", ["fmnist28", "mobile224"])
def test_size_sampling_and_validation(name):
    space = get_space(name)
    assert space.size() == SIZES[name]
    assert SIZES["fmnist28"] == 4_897_760_256
    assert space.sample(7) == space.sample(7)
    draws = {space.sample(np.random.default_rng(i)) for i in range(50)}
    assert len(draws) == 50
    # every decision is sampled over all of its choices (uniform, independent)
    rng = np.random.default_rng(0)
    seen = [set() for _ in space.decisions]
    for _ in range(400):
        for s, v in zip(seen, space.sample(rng).values, strict=True):
            s.add(v)
    assert all(len(s) == len(d) for s, d in zip(seen, space.decisions, strict=True))


def test_each_stage_decides_the_mnasnet_choices():
    space = get_space("mobile224")
    stage0 = {d.name.split(".")[1]: d.choices for d in space.decisions if d.name[:3] == "s0."}
    assert set(stage0) == {"op", "kernel", "layers", "channels", "act", "se"}
    assert {"ds", "mb3", "mb6"} <= set(stage0["op"])
    assert stage0["kernel"] == (3, 5, 7)
    assert set(stage0["act"]) >= {"relu", "hswish"} and stage0["se"] == (0.0, 0.25)


def test_validate_rejects_out_of_space_values():
    space = get_space("fmnist28")
    arch = space.sample(0)
    bad = type(arch)(arch.space, (99,) + arch.values[1:])
    with pytest.raises(ArchError, match="s0.op=99"):
        space.validate(bad)


@pytest.mark.parametrize("name", ["fmnist28", "mobile224"])
def test_enumerated_layers_cover_every_sampled_architecture(name):
    space = get_space(name)
    keys = set(space.enumerate_layers())
    assert len(keys) == len(space.enumerate_layers())
    for i in range(100):
        layers = space.layers(space.sample(i))
        assert set(layers) <= keys
        assert layers[0].op == "stem" and layers[-1].op == "classifier"


def test_residual_only_where_stride_one_and_channels_match():
    for key in get_space("mobile224").enumerate_layers():
        assert key.residual == (key.op in ("ds", "mb") and key.stride == 1
                                and key.cin == key.cout)


def test_layer_key_id_round_trips():
    for key in get_space("fmnist28").enumerate_layers():
        assert LayerKey.from_id(key.id) == key
        assert LayerKey.from_json(key.to_json()) == key
    with pytest.raises(ArchError):
        LayerKey.from_id("mb:garbage")
