"""Cell operators and networks: every layer key builds, networks are exactly their keys,
they export to ONNX that onnxruntime runs like torch, and a NASNet cell net learns."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mobile_nas.cost.flops import count_macs, count_params
from mobile_nas.models import build_layer, build_model
from mobile_nas.space import get_space

SPACES = ["nasnet", "nb201", "nasnet@n2-f4-r32"]


@pytest.mark.parametrize("name", ["nasnet", "nb201"])
def test_every_enumerated_layer_builds_and_has_its_output_shape(name):
    space = get_space(name)
    for key in space.enumerate_layers():
        layer = build_layer(key).eval()
        with torch.no_grad():
            out = layer(torch.randn(1, key.cin, key.h, key.w))
        if key.op in ("nb201_head", "cell_classifier"):
            assert out.shape == (1, key.cout), key.id
        else:
            assert out.shape == (1, key.cout, *key.out_hw), key.id


@pytest.mark.parametrize("name", SPACES)
def test_sampled_networks_forward(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(1 if "@" in name else 2):
        model = build_model(space.sample(rng)).eval()
        with torch.no_grad():
            out = model(torch.randn(2, *space.input_shape))
        assert out.shape == (2, space.num_classes) and torch.isfinite(out).all()


@pytest.mark.parametrize("name, seed", [("nasnet", 0), ("nb201", 2)])
def test_network_is_exactly_its_layer_keys(name, seed):
    """Params and MACs of the whole net equal the sums over layers(arch): a latency table
    keyed by these layers times everything that carries arithmetic."""
    space = get_space(name)
    arch = space.sample(seed)
    keys = space.layers(arch)
    model = build_model(arch)
    assert count_params(model) == sum(count_params(build_layer(k)) for k in keys)
    per_key = {k: count_macs(build_layer(k), (k.cin, k.h, k.w)).macs for k in set(keys)}
    assert count_macs(model, space.input_shape).macs == sum(per_key[k] for k in keys)


def test_all_none_nb201_cell_outputs_zeros_and_still_classifies():
    space = get_space("nb201")
    model = build_model(space.decode("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")).eval()
    with torch.no_grad():
        a, b = model(torch.randn(1, 3, 32, 32)), model(torch.randn(1, 3, 32, 32))
    assert torch.allclose(a, b)  # the input cannot reach the classifier


@pytest.mark.parametrize("name", ["nasnet", "nb201"])
def test_onnx_export_matches_torch(tmp_path, name):
    space = get_space(name)
    model = build_model(space.sample(5)).eval()
    x = torch.randn(1, *space.input_shape)
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, x, str(path), opset_version=17, dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-3, atol=1e-4)


def test_nasnet_cell_network_fits_a_fashion_mnist_batch():
    from mobile_nas.train.data import DEBIAN_FASHION_MNIST, batches, load_dataset

    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    data = load_dataset("fashion-mnist", val_size=1000, download=False)
    torch.manual_seed(0)
    model = build_model(get_space("nasnet@f4").sample(3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = next(batches(data.train.subset(32, seed=0), 32, mean=data.mean, std=data.std))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small ops: one thread is faster than two on a shared CPU
    try:
        losses = []
        for _ in range(10):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < 0.5 * losses[0]


def test_one_key_per_cell_op_exports_for_the_latency_profiler():
    """The profiler exports single layers with export_layer_onnx; every cell op must load
    and run in onnxruntime with the key's output shape."""
    from mobile_nas.cost.latency.export import export_layer_onnx

    keys = {}
    for name in ("nasnet", "nb201"):
        for key in get_space(name).enumerate_layers():
            keys.setdefault((key.op, key.stride), key)
    assert len(keys) >= 12
    for key in keys.values():
        sess = ort.InferenceSession(export_layer_onnx(key), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((1, key.cin, key.h, key.w))
        (y,) = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})
        expected = (1, key.cout) if key.op in ("nb201_head", "cell_classifier") else \
            (1, key.cout, *key.out_hw)
        assert y.shape == expected and np.isfinite(y).all(), key.id
