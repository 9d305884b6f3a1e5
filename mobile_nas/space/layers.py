"""LayerKey: everything that decides one operator's latency, as pure data."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from mobile_nas.errors import ArchError


@dataclass(frozen=True, order=True)
class LayerKey:
    """One layer configuration as it appears in a network.

    ``h`` and ``w`` are the *input* spatial size. ``op`` names the operator family
    (``stem``, ``ds``, ``mb``, ``head``, ``classifier`` in the mobile spaces; cell spaces add
    their own). Two layers with equal keys have the same latency on a given device.
    """

    op: str
    cin: int
    cout: int
    h: int
    w: int
    kernel: int = 1
    stride: int = 1
    expansion: int = 1
    se: float = 0.0
    act: str = "none"
    residual: bool = False

    @property
    def id(self) -> str:
        """Compact, unique, parseable identifier used as a JSON key in latency tables."""
        return (
            f"{self.op}:cin{self.cin}:cout{self.cout}:h{self.h}:w{self.w}:k{self.kernel}"
            f":s{self.stride}:e{self.expansion}:se{self.se:g}:{self.act}:r{int(self.residual)}"
        )

    @classmethod
    def from_id(cls, key_id: str) -> LayerKey:
        """Inverse of :attr:`id`; raises :class:`ArchError` for a malformed identifier."""
        m = _ID_RE.fullmatch(key_id)
        if not m:
            raise ArchError(f"malformed layer key {key_id!r}")
        g = m.groupdict()
        return cls(
            op=g["op"], cin=int(g["cin"]), cout=int(g["cout"]), h=int(g["h"]), w=int(g["w"]),
            kernel=int(g["k"]), stride=int(g["s"]), expansion=int(g["e"]), se=float(g["se"]),
            act=g["act"], residual=g["r"] == "1",
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerKey:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ArchError(f"unknown layer key fields {sorted(unknown)}")
        return cls(**data)

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output spatial size of a 'same'-padded layer with this stride."""
        return -(-self.h // self.stride), -(-self.w // self.stride)


_ID_RE = re.compile(
    r"(?P<op>[a-z0-9_]+):cin(?P<cin>\d+):cout(?P<cout>\d+):h(?P<h>\d+):w(?P<w>\d+):k(?P<k>\d+)"
    r":s(?P<s>\d+):e(?P<e>\d+):se(?P<se>[0-9.]+):(?P<act>[a-z0-9_]+):r(?P<r>[01])"
)
