import warnings

import numpy as np
import onnx
import pytest
import torch
import torchvision

from mobile_nas.cost.flops import count_macs, count_params
from mobile_nas.cost.model_costs import model_costs
from mobile_nas.models import build_model
from mobile_nas.space import BASELINE_ARCHS, REFERENCE_ARCHS, get_space, load_arch


@pytest.mark.parametrize("name, n", [("fmnist28", 8), ("mobile224", 3)])
def test_forward_shapes_of_sampled_architectures(name, n):
    space = get_space(name)
    for i in range(n):
        model = build_model(space.sample(i)).eval()
        with torch.no_grad():
            out = model(torch.randn(2, *space.input_shape))
        assert out.shape == (2, space.num_classes)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["mobilenet_v2", "mnasnet1_0"])
def test_reference_archs_match_torchvision_params_and_macs(name):
    ref = REFERENCE_ARCHS.get(name)
    ours = build_model(load_arch(name, None))
    theirs = getattr(torchvision.models, name)()
    assert count_params(ours) == count_params(theirs) == ref.params
    macs = count_macs(ours, (3, 224, 224))
    assert macs.macs == count_macs(theirs, (3, 224, 224)).macs == ref.macs
    assert macs.uncounted == {}
    assert model_costs(load_arch(name, None)).macs == ref.macs


def test_mac_convention_matches_torchvision_published_ops():
    weights = {"mobilenet_v2": torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1,
               "mnasnet1_0": torchvision.models.MNASNet1_0_Weights.IMAGENET1K_V1}
    for name, w in weights.items():
        assert round(REFERENCE_ARCHS.get(name).macs / 1e9, 3) == w.meta["_ops"]


def test_onnx_export_of_sampled_architectures_passes_checker(tmp_path):
    space = get_space("fmnist28")
    rng = np.random.default_rng(3)
    for i in range(3):
        model = build_model(space.sample(rng)).eval()
        path = tmp_path / f"m{i}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, torch.randn(1, *space.input_shape), str(path),
                              opset_version=17, dynamo=False)
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)


@pytest.mark.parametrize("name", ["fmnist28_mnasnet", "fmnist28_mobilenet_v2", "nb201_resnet",
                                  "fmnist28_mobilenet_v2_scaled", "fmnist28_mobilenet_v3_small"])
def test_recorded_costs_of_the_small_references(name):
    ref = (REFERENCE_ARCHS if name in REFERENCE_ARCHS else BASELINE_ARCHS).get(name)
    arch = load_arch(name, None)
    costs = model_costs(arch)
    assert (costs.params, costs.macs) == (ref.params, ref.macs)
