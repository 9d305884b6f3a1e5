"""Networks built from architectures: stand-alone models and the weight-sharing supernet."""

from mobile_nas.models.blocks import build_layer
from mobile_nas.models.build import build_model, register_builder

__all__ = ["build_layer", "build_model", "register_builder"]
