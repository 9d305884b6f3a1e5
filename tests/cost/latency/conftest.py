import pytest

from mobile_nas.space import get_space

#: A small fmnist28 architecture (9 layers) used across the latency tests.
SMALL_ARCH = "mb3_k5_n2_c24_relu|mb6_k7_n1_c24_hswish|ds_k7_n1_c48_hswish_se|ds_k3_n3_c96_hswish_se"


@pytest.fixture(scope="session")
def fmnist():
    return get_space("fmnist28")


@pytest.fixture(scope="session")
def small_arch(fmnist):
    return fmnist.decode(SMALL_ARCH)


@pytest.fixture(scope="session")
def small_table_path(tmp_path_factory, fmnist, small_arch):
    """A real table (onnxruntime timings, cpu clock) of the small arch's distinct layers."""
    from mobile_nas.cost.latency.profiler import ProfileSettings, build_table

    out = tmp_path_factory.mktemp("lut") / "small.json"
    keys = sorted(set(fmnist.layers(small_arch)))
    build_table("fmnist28", keys, out, settings=ProfileSettings(rounds=4, clock="cpu"),
                restricted_to=[SMALL_ARCH], progress=False)
    return out
