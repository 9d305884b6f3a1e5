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
    build_table("fmnist28", keys, out,
                settings=ProfileSettings(rounds=4, runs_per_round=3, clock="cpu"),
                restricted_to=[SMALL_ARCH], progress=False)
    return out


#: Networks whose layers are all among SMALL_ARCH's 9 keys (repeat counts varied): enough
#: to calibrate a table of those keys (3 to fit, 2 held out) without timing more layers.
SMALL_VARIANTS = [SMALL_ARCH] + [
    f"mb3_k5_n{a}_c24_relu|mb6_k7_n1_c24_hswish|ds_k7_n1_c48_hswish_se|ds_k3_n{d}_c96_hswish_se"
    for a, d in ((1, 1), (1, 2), (1, 3), (2, 1), (2, 2))]


@pytest.fixture(scope="session")
def small_variants(fmnist):
    return [fmnist.decode(s) for s in SMALL_VARIANTS]
