"""check_fits_dataset: a network that cannot take the dataset's images is one error line,
and a cell space is told the size knobs that fit."""

from types import SimpleNamespace

import pytest

from mobile_nas.errors import SettingError
from mobile_nas.space import get_space
from mobile_nas.train.trainer import TrainError, check_fits_dataset


def _data(shape, classes, name="fashion-mnist"):
    return SimpleNamespace(input_shape=shape, classes=[str(i) for i in range(classes)],
                           name=name)


def test_matching_dataset_passes():
    check_fits_dataset(get_space("fmnist28").sample(0), _data((1, 28, 28), 10))


def test_fixed_space_names_both_shapes():
    with pytest.raises(TrainError) as info:
        check_fits_dataset(get_space("fmnist28").sample(0), _data((3, 32, 32), 10, "cifar10"))
    assert str(info.value) == ("space 'fmnist28' takes 1x28x28 inputs and 10 classes, dataset "
                               "'cifar10' has 3x32x32 images in 10 classes")


def test_cell_space_is_told_the_knobs_and_the_space_that_fit():
    with pytest.raises(SettingError) as info:
        check_fits_dataset(get_space("nb201").sample(0), _data((1, 28, 28), 10))
    assert str(info.value).endswith(
        "; train its cells resized to the data with input_size 28 channels 1 "
        "(space nb201@n5-f16-1x28x28-k10)")
    assert (info.value.what, info.value.value, info.value.others) == (
        "input_size", 28, ("channels",))
    with pytest.raises(SettingError,
                       match=r"num_classes 7 \(space nb201@n5-f16-3x32x32-k7\)$") as info:
        check_fits_dataset(get_space("nb201").sample(0), _data((3, 32, 32), 7))
    assert (info.value.what, info.value.value, info.value.others) == ("num_classes", 7, ())
