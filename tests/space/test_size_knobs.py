"""SizeKnobs: the cell-space size knobs of transfer, train and export, as a library value."""

import pytest

from mobile_nas.errors import SpaceError
from mobile_nas.space import get_space
from mobile_nas.space.scaled import SizeKnobs


def test_no_knob_given_keeps_the_architecture():
    arch = get_space("nasnet").sample(0)
    assert not SizeKnobs().given
    assert SizeKnobs().transfer(arch) is arch
    assert SizeKnobs(num_classes=3).given


def test_knobs_left_out_keep_the_resized_space_values():
    small = get_space("nb201@n1-f8-1x28x28-k10")
    resized = SizeKnobs(filters=16, input_size=32).resize(small)
    assert resized.name == "nb201@n1-f16-1x32x32-k10"  # cells, channels, classes kept
    assert (resized.cells, resized.filters, resized.num_classes) == (1, 16, 10)
    assert tuple(resized.input_shape) == (1, 32, 32)
    assert SizeKnobs(channels=3, num_classes=100).resize(resized).name == \
        "nb201@n1-f16-3x32x32-k100"


def test_transfer_restacks_the_same_cells():
    arch = get_space("nasnet").sample(3)
    big = SizeKnobs(cells=4, filters=32, input_size=224, channels=3,
                    num_classes=1000).transfer(arch)
    assert big.space == "nasnet@n4-f32-3x224x224-k1000"
    assert big.values == arch.values and big.to_string() == arch.to_string()


def test_spaces_without_knobs_and_bad_knobs_are_refused():
    with pytest.raises(SpaceError, match="'fmnist28' has no size knobs"):
        SizeKnobs(cells=2).resize(get_space("fmnist28"))
    with pytest.raises(SpaceError, match="'fmnist28' has no size knobs"):
        SizeKnobs(cells=2).transfer(get_space("fmnist28").sample(0))
    with pytest.raises(SpaceError, match="positive integers"):
        SizeKnobs(cells=0).resize(get_space("nasnet"))
