"""Search spaces, architectures and their string codec.

Loading the package fills the registry: the built-in spaces register themselves
(:mod:`~mobile_nas.space.presets`), and :mod:`~mobile_nas.space.scaled` resolves
``<base>@<knobs>`` names.
"""

import mobile_nas.space.presets  # noqa: F401  (registers the built-in spaces)
import mobile_nas.space.scaled  # noqa: F401  (registers the resolver of scaled names)
from mobile_nas.space.architecture import Architecture, load_arch, load_arch_or_run
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.decision import Decision
from mobile_nas.space.layers import LayerKey
from mobile_nas.space.reference import BASELINE_ARCHS, REFERENCE_ARCHS, ReferenceArch
from mobile_nas.space.registry import (
    canonical_space_name,
    get_space,
    list_spaces,
    register_space,
)

__all__ = [
    "BASELINE_ARCHS", "Architecture", "Decision", "LayerKey", "REFERENCE_ARCHS", "ReferenceArch",
    "SearchSpace",
    "canonical_space_name", "get_space", "list_spaces", "load_arch", "load_arch_or_run",
    "register_space",
]
