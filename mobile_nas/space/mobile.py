"""The MnasNet-style factorized hierarchical space: fixed stem and head, searched stages.

Each stage decides, for all of its layers at once (MnasNet's factorization):

* ``op``: block type and expansion ratio together — ``ds`` (depthwise-separable conv) or
  ``mb<e>`` (inverted-residual MBConv with expansion ``e``). Joining the two means no two
  strings build the same network (an MBConv of expansion 1 *is* a ``ds`` block).
* ``kernel`` (depthwise kernel), ``layers`` (repeats), ``channels`` (output width),
  ``act`` (relu, relu6, hswish) and ``se`` (squeeze-and-excitation ratio, 0 = none).

The first layer of a stage has the stage's stride; the others have stride 1 and a residual
connection (residuals wherever stride is 1 and channels match). The stem uses the first
stage's activation and the head the last stage's.

String form: stages joined by ``|``, each ``<op>_k<kernel>_n<layers>_c<channels>_<act>[_se]``,
e.g. ``ds_k3_n1_c16_relu6|mb6_k5_n2_c24_hswish_se|...``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from mobile_nas.errors import ArchError
from mobile_nas.space.architecture import Architecture
from mobile_nas.space.base import SearchSpace
from mobile_nas.space.decision import Decision
from mobile_nas.space.layers import LayerKey

ACTIVATIONS = ("relu", "relu6", "hswish")
_FIELDS = ("op", "kernel", "layers", "channels", "act", "se")


@dataclass(frozen=True)
class StageSpec:
    """What a stage may choose; ``stride`` is fixed."""

    stride: int
    ops: tuple[str, ...]
    kernels: tuple[int, ...]
    layers: tuple[int, ...]
    channels: tuple[int, ...]
    acts: tuple[str, ...]
    se: tuple[float, ...]


@dataclass(frozen=True)
class StageConfig:
    """What a stage chose."""

    op: str
    kernel: int
    layers: int
    channels: int
    act: str
    se: float

    @property
    def block(self) -> str:
        return "ds" if self.op == "ds" else "mb"

    @property
    def expansion(self) -> int:
        return 1 if self.op == "ds" else int(self.op[2:])


class MobileSpace(SearchSpace):
    """A MnasNet/MobileNetV2-style skeleton with per-stage decisions (see module docstring)."""

    family = "mobile"
    #: the network is exactly the sequence of its layers (tested)
    costs_are_layer_sums = True
    has_stages = True
    has_extreme_archs = True

    def __init__(self, *, name: str, input_shape: tuple[int, int, int], num_classes: int,
                 stem_channels: int, stem_stride: int, stages: tuple[StageSpec, ...],
                 head_channels: int, dropout: float, description: str = "") -> None:
        for i, st in enumerate(stages):
            bad = [op for op in st.ops if not re.fullmatch(r"ds|mb[1-9]\d*", op)]
            bad += [a for a in st.acts if a not in ACTIVATIONS]
            if bad:
                raise ValueError(f"stage {i} of {name!r}: unknown choices {bad}")
        decisions = [
            Decision(f"s{i}.{field}", getattr(st, field + ("s" if field in
                     ("op", "kernel", "act") else "")))
            for i, st in enumerate(stages) for field in _FIELDS
        ]
        super().__init__(name=name, decisions=decisions, input_shape=input_shape,
                         num_classes=num_classes, description=description)
        self.stem_channels = stem_channels
        self.stem_stride = stem_stride
        self.stages = stages
        self.head_channels = head_channels
        self.dropout = dropout

    # -- structured view -----------------------------------------------------------------
    def stage_configs(self, arch: Architecture) -> list[StageConfig]:
        self.validate(arch)
        n = len(_FIELDS)
        return [StageConfig(*arch.values[i * n:(i + 1) * n]) for i in range(len(self.stages))]

    def from_stage_configs(self, configs: list[StageConfig]) -> Architecture:
        values = tuple(getattr(c, f) for c in configs for f in _FIELDS)
        arch = Architecture(self.name, values)
        self.validate(arch)
        return arch

    def extreme_archs(self) -> dict[str, Architecture]:
        return {"smallest": self.smallest_arch(), "largest": self.largest_arch()}

    def smallest_arch(self) -> Architecture:
        """Narrowest, shallowest path: ``ds``, smallest kernel, depth and width, no SE."""
        return self.from_stage_configs([
            StageConfig(op=min(st.ops, key=_op_size), kernel=min(st.kernels),
                        layers=min(st.layers), channels=min(st.channels), act=st.acts[0],
                        se=min(st.se)) for st in self.stages])

    def largest_arch(self) -> Architecture:
        """Widest, deepest path: largest expansion, kernel, depth and width, with SE."""
        return self.from_stage_configs([
            StageConfig(op=max(st.ops, key=_op_size), kernel=max(st.kernels),
                        layers=max(st.layers), channels=max(st.channels), act=st.acts[-1],
                        se=max(st.se)) for st in self.stages])

    # -- codec ---------------------------------------------------------------------------
    def encode(self, arch: Architecture) -> str:
        parts = []
        for c in self.stage_configs(arch):
            tokens = [c.op, f"k{c.kernel}", f"n{c.layers}", f"c{c.channels}", c.act]
            if c.se:
                tokens.append("se" if c.se == 0.25 else f"se{c.se:g}")
            parts.append("_".join(tokens))
        return "|".join(parts)

    def decode(self, text: str) -> Architecture:
        if not isinstance(text, str) or not text.strip():
            raise ArchError("empty architecture string")
        stages = text.strip().split("|")
        if len(stages) != len(self.stages):
            raise ArchError(f"space {self.name!r} has {len(self.stages)} stages separated by "
                            f"'|', got {len(stages)} in {text!r}")
        return self.from_stage_configs([self._decode_stage(i, s) for i, s in enumerate(stages)])

    def _decode_stage(self, i: int, text: str) -> StageConfig:
        spec = self.stages[i]
        found: dict[str, object] = {"se": 0.0}
        seen: set[str] = set()
        for tok in text.strip().split("_"):
            field, value = _parse_token(tok, i)
            if field in seen:
                raise ArchError(f"stage {i}: token {tok!r} repeats the {field} choice")
            seen.add(field)
            allowed = getattr(spec, field + ("s" if field in ("op", "kernel", "act") else ""))
            if value not in allowed:
                shown = ", ".join(_show(field, a) for a in allowed)
                raise ArchError(f"stage {i}: token {tok!r} is not in the space; "
                                f"allowed {field}: {shown}")
            found[field] = value
        missing = [f for f in _FIELDS if f not in found]
        if missing:
            raise ArchError(f"stage {i} ({text!r}) lacks {', '.join(missing)}; expected "
                            f"<op>_k<kernel>_n<layers>_c<channels>_<act>[_se]")
        if 0.0 not in spec.se and "se" not in seen:
            raise ArchError(f"stage {i} ({text!r}) must choose an se token; allowed: "
                            + ", ".join(_show("se", a) for a in spec.se))
        return StageConfig(**found)  # type: ignore[arg-type]

    # -- layers --------------------------------------------------------------------------
    def _stage_hw(self) -> list[tuple[int, int]]:
        """Input spatial size of each stage's first layer, then the head's."""
        _, h, w = self.input_shape
        h, w = -(-h // self.stem_stride), -(-w // self.stem_stride)
        sizes = []
        for st in self.stages:
            sizes.append((h, w))
            h, w = -(-h // st.stride), -(-w // st.stride)
        sizes.append((h, w))
        return sizes

    def _stem(self, act: str) -> LayerKey:
        c, h, w = self.input_shape
        return LayerKey("stem", c, self.stem_channels, h, w, kernel=3, stride=self.stem_stride,
                        act=act)

    def _head(self, cin: int, act: str) -> list[LayerKey]:
        h, w = self._stage_hw()[-1]
        return [LayerKey("head", cin, self.head_channels, h, w, kernel=1, act=act),
                LayerKey("classifier", self.head_channels, self.num_classes, h, w)]

    @staticmethod
    def _block(c: StageConfig, cin: int, h: int, w: int, stride: int) -> LayerKey:
        return LayerKey(c.block, cin, c.channels, h, w, kernel=c.kernel, stride=stride,
                        expansion=c.expansion, se=c.se, act=c.act,
                        residual=stride == 1 and cin == c.channels)

    def layers(self, arch: Architecture) -> list[LayerKey]:
        configs = self.stage_configs(arch)
        keys = [self._stem(configs[0].act)]
        cin = self.stem_channels
        for c, st, (h, w) in zip(configs, self.stages, self._stage_hw(), strict=False):
            for j in range(c.layers):
                stride = st.stride if j == 0 else 1
                keys.append(self._block(c, cin, h, w, stride))
                if j == 0:
                    h, w = -(-h // stride), -(-w // stride)
                cin = c.channels
        keys.extend(self._head(cin, configs[-1].act))
        return keys

    def enumerate_layers(self) -> list[LayerKey]:
        keys: set[LayerKey] = {self._stem(a) for a in self.stages[0].acts}
        prev_channels: tuple[int, ...] = (self.stem_channels,)
        sizes = self._stage_hw()
        for st, (h, w) in zip(self.stages, sizes, strict=False):
            for op, k, act, se, cout in itertools.product(st.ops, st.kernels, st.acts, st.se,
                                                          st.channels):
                c = StageConfig(op, k, 1, cout, act, se)
                keys.update(self._block(c, cin, h, w, st.stride) for cin in prev_channels)
                if max(st.layers) > 1:
                    oh, ow = -(-h // st.stride), -(-w // st.stride)
                    keys.add(self._block(c, cout, oh, ow, 1))
            prev_channels = st.channels
        for cin, act in itertools.product(prev_channels, self.stages[-1].acts):
            keys.update(self._head(cin, act))
        return sorted(keys)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["stem"] = {"channels": self.stem_channels, "stride": self.stem_stride}
        info["head"] = {"channels": self.head_channels, "dropout": self.dropout}
        info["stages"] = [
            {"stride": st.stride, "ops": list(st.ops), "kernels": list(st.kernels),
             "layers": list(st.layers), "channels": list(st.channels), "acts": list(st.acts),
             "se": list(st.se)}
            for st in self.stages
        ]
        return info


def _parse_token(tok: str, stage: int) -> tuple[str, object]:
    if tok in ACTIVATIONS:
        return "act", tok
    if tok == "ds" or re.fullmatch(r"mb\d+", tok):
        return "op", tok
    if tok == "se":
        return "se", 0.25
    m = re.fullmatch(r"se(\d*\.?\d+)", tok)
    if m:
        return "se", float(m.group(1))
    m = re.fullmatch(r"([knc])(\d+)", tok)
    if m:
        return {"k": "kernel", "n": "layers", "c": "channels"}[m.group(1)], int(m.group(2))
    raise ArchError(
        f"stage {stage}: unknown token {tok!r}; expected an op (ds, mb<e>), k<kernel>, "
        f"n<layers>, c<channels>, an activation ({', '.join(ACTIVATIONS)}) or se"
    )


def _show(field: str, value: object) -> str:
    prefix = {"kernel": "k", "layers": "n", "channels": "c"}.get(field)
    if prefix:
        return f"{prefix}{value}"
    if field == "se":
        return "(none)" if not value else ("se" if value == 0.25 else f"se{value:g}")
    return str(value)


def _op_size(op: str) -> int:
    return 1 if op == "ds" else int(op[2:])
