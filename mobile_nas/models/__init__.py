"""Networks built from architectures: stand-alone models and the weight-sharing supernet."""

from mobile_nas.models import cells as _cells  # noqa: F401  (registers cell ops and builders)
from mobile_nas.models.blocks import build_layer, register_layer_builder
from mobile_nas.models.build import build_model, register_builder

__all__ = ["build_layer", "register_layer_builder", "build_model", "register_builder"]
