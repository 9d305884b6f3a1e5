"""Reference architectures: known networks expressed in our spaces, with recorded costs.

``params`` and ``macs`` are the figures of the torchvision model of the same name (MACs as
counted by :func:`mobile_nas.cost.flops.count_macs`); tests rebuild both networks and check.
The architectures are data, in ``references.json`` beside this module (each entry's ``note``
says where a hand-designed one comes from).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mobile_nas.errors import SpaceError
from mobile_nas.registry import Registry

#: The shipped reference and baseline architectures.
REFERENCES_FILE = Path(__file__).with_name("references.json")


@dataclass(frozen=True)
class ReferenceArch:
    name: str
    space: str
    arch: str
    params: int
    macs: int
    source: str


REFERENCE_ARCHS: Registry[ReferenceArch] = Registry("reference architecture", SpaceError)
#: Hand-designed baselines a benchmark compares against (scaled to its latency target), usable
#: by name wherever ARCH is taken; unlike :data:`REFERENCE_ARCHS` they are not a space's
#: references: latency tables neither calibrate on nor check them, the demo does not show them.
BASELINE_ARCHS: Registry[ReferenceArch] = Registry("baseline architecture", SpaceError)


def _register_shipped(path: Path = REFERENCES_FILE) -> None:
    """Registers the ``references`` and ``baselines`` of ``path``, in their order (a space's
    first reference is the one its latency targets default to)."""
    data = json.loads(path.read_text())
    for group, registry in (("references", REFERENCE_ARCHS), ("baselines", BASELINE_ARCHS)):
        for entry in data[group]:
            ref = ReferenceArch(**{k: v for k, v in entry.items() if k != "note"})
            registry.register(ref.name, ref)


_register_shipped()
