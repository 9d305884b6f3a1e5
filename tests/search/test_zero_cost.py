"""Zero-cost proxies against values worked out by hand, and as a search evaluator."""

import json
import math

import pytest
import torch
from torch import nn

from mobile_nas.search.zero_cost import ZeroCostEvaluator, naswot_score, synflow_score


def test_naswot_is_the_log_determinant_of_the_hamming_kernel():
    # identity layer + ReLU: the codes of the three images are 10, 01 and 11, so
    # K = N - hamming = [[2, 0, 1], [0, 2, 1], [1, 1, 2]] with determinant 4
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    model = nn.Sequential(layer, nn.ReLU())
    images = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    assert naswot_score(model, images) == pytest.approx(math.log(4.0))


def test_naswot_of_images_it_cannot_tell_apart_is_minus_infinity():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    images = torch.ones(3, 2)  # three identical codes: K is singular
    assert naswot_score(model, images) == float("-inf")


def test_naswot_needs_rectifier_units():
    with pytest.raises(ValueError, match="no rectifier"):
        naswot_score(nn.Linear(2, 2), torch.ones(2, 2))


def test_synflow_of_a_two_layer_linear_network_is_twice_its_flow_and_keeps_the_weights():
    # R = sum_j |a_j| sum_i |B_ji| for ones input; each layer's sum of θ dR/dθ is R, so 2R
    first, second = nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.tensor([[1.0, -2.0], [-3.0, 4.0]]))
        second.weight.copy_(torch.tensor([[-0.5, 2.0]]))
    model = nn.Sequential(first, second)
    before = [p.detach().clone().double() for p in model.parameters()]
    flow = 0.5 * (1 + 2) + 2.0 * (3 + 4)  # R = 15.5
    assert synflow_score(model, (2,)) == pytest.approx(2 * flow)
    assert all(torch.equal(b, p.detach()) for b, p in zip(before, model.parameters(), strict=True))


@pytest.fixture(scope="module")
def synthetic():
    from mobile_nas.train.data import load_dataset

    return load_dataset("synthetic", val_size=500)


@pytest.mark.parametrize("proxy", ["naswot", "synflow"])
def test_evaluator_scores_are_a_function_of_the_architecture(synthetic, proxy):
    from mobile_nas.space import get_space

    space = get_space("fmnist28")
    archs = [space.sample(seed) for seed in range(3)]
    first = ZeroCostEvaluator(space=space, dataset=synthetic, proxy=proxy, batch_size=32)
    second = ZeroCostEvaluator(space=space, dataset=synthetic, proxy=proxy, batch_size=32)
    scores = [first.evaluate(a) for a in archs]
    assert scores == [second.evaluate(a) for a in archs]
    assert len(set(scores)) == 3 and all(math.isfinite(s) for s in scores)
    assert first.describe()["name"] == f"zero-cost:{proxy}"


def test_unknown_proxy_is_refused(synthetic):
    from mobile_nas.search.evaluator import EvaluatorError
    from mobile_nas.space import get_space

    with pytest.raises(EvaluatorError, match="unknown zero-cost proxy 'snip'"):
        ZeroCostEvaluator(space=get_space("fmnist28"), dataset=synthetic, proxy="snip")


def test_search_with_naswot_trains_nothing(run_cli, tmp_path, table_path):
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        "search", "--no-progress", "--space", "fmnist28", "--dataset", "synthetic",
        "--strategy", "random", "--latency-target-ms", "1000", "--table", str(table_path),
        "--trials", "3", "--out", str(out), "--evaluator", "naswot", "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["evaluator"]["name"] == "zero-cost:naswot"
    assert not (out / "supernet.pt").exists()
    assert math.isfinite(doc["best"]["accuracy"])


def test_search_text_names_the_zero_cost_score(run_cli, tmp_path, table_path):
    code, stdout, err = run_cli(
        "search", "--no-progress", "--space", "fmnist28", "--dataset", "synthetic",
        "--strategy", "random", "--latency-target-ms", "1000", "--table", str(table_path),
        "--trials", "2", "--out", str(tmp_path / "run"), "--evaluator", "synflow")
    assert code == 0, err
    line = next(x for x in stdout.splitlines() if "accuracy" in x)
    assert "(zero-cost:synflow score)" in line and "%" not in line.split("latency")[0]


def test_synflow_reads_no_data_but_still_refuses_a_misspelled_dataset(run_cli, tmp_path,
                                                                     table_path):
    code, stdout, err = run_cli(
        "search", "--no-progress", "--space", "fmnist28", "--dataset", "fashion-minst",
        "--strategy", "random", "--latency-target-ms", "1000", "--table", str(table_path),
        "--trials", "2", "--out", str(tmp_path / "run"), "--evaluator", "synflow")
    assert code == 2 and err.count("\n") == 1
    assert "unknown dataset 'fashion-minst'" in err and not (tmp_path / "run").exists()


def test_scoring_leaves_the_callers_random_stream_alone(synthetic):
    from mobile_nas.space import get_space

    evaluator = ZeroCostEvaluator(space=get_space("fmnist28"), dataset=synthetic,
                                  proxy="synflow")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluator.evaluate(get_space("fmnist28").sample(0))
    assert torch.equal(torch.rand(3), expected)
