"""Static costs of an architecture: MACs and parameters of the built network."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from mobile_nas.cost.flops import count_macs, count_params
from mobile_nas.models import build_model
from mobile_nas.space.architecture import Architecture


@dataclass(frozen=True)
class ModelCosts:
    """MACs (fused multiply-adds counted once, fvcore convention) and parameters."""

    macs: int
    params: int


@lru_cache(maxsize=4096)
def model_costs(arch: Architecture) -> ModelCosts:
    """MACs and parameters of ``build_model(arch)``, cached per architecture."""
    model = build_model(arch)
    return ModelCosts(count_macs(model, arch.search_space.input_shape).macs,
                      count_params(model))
