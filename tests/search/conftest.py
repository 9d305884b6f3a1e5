"""Shared fixtures: cheap evaluators, a synthetic but complete latency table."""

from __future__ import annotations

import pytest

from mobile_nas.search.evaluator import Evaluator
from mobile_nas.space import get_space


class WidthEvaluator(Evaluator):
    """Deterministic stand-in for a trained network: wider and SE stages score higher."""

    def evaluate(self, arch):
        configs = self.space.stage_configs(arch)
        return 0.5 + sum(c.channels for c in configs) / 1000 + 0.01 * sum(
            c.se > 0 for c in configs) + 0.005 * sum(c.kernel == 5 for c in configs)


def macs_latency_ms(arch) -> float:
    """A latency stand-in: 1 ms per million MACs."""
    from mobile_nas.search.costs import macs_params

    return macs_params(arch)[0] / 1e6


@pytest.fixture
def fmnist28():
    return get_space("fmnist28")


@pytest.fixture
def width_evaluator(fmnist28):
    return WidthEvaluator(space=fmnist28)


def synthetic_table_json(space, *, drop: int = 0) -> dict:
    """A complete latency table for ``space`` (latency grows with layer size); ``drop``
    leaves out that many keys."""
    from mobile_nas.cost.latency import LatencyTable, LayerLatency

    entries = {}
    for k in space.enumerate_layers()[drop:]:
        size = k.cin * k.expansion * k.h * k.w * (k.kernel ** 2 + k.cout) * 1e-7
        entries[k.id] = LayerLatency(median_ms=0.01 + size, iqr_ms=0.001, n=5)
    return LatencyTable(space=space.name, metadata={"device": "synthetic"},
                        entries=entries).to_json()


@pytest.fixture(scope="session")
def table_path(tmp_path_factory):
    import json

    path = tmp_path_factory.mktemp("lut") / "fmnist28.json"
    path.write_text(json.dumps(synthetic_table_json(get_space("fmnist28"))))
    return path


def state_file_round_trip(state: dict, path) -> dict:
    """``state`` written and read back the way StrategySampler stores it: tensors as
    safetensors, the rest as JSON in the file's metadata."""
    from mobile_nas.search.sampler import STATE_FILE_TYPE
    from mobile_nas.weightfile import pack_tensors, unpack_tensors

    packed, tensors = pack_tensors(state)
    STATE_FILE_TYPE.save_safetensors(path, tensors, {"state": packed})
    tensors, meta = STATE_FILE_TYPE.load_safetensors(path)
    return unpack_tensors(meta["state"], tensors)
