"""onnxruntime's own mobile usability analysis, per execution provider, as data.

This is what ``python -m onnxruntime.tools.check_onnx_model_mobile_usability MODEL`` runs
(``onnxruntime.tools.mobile_helpers.usability_checker``): the model is first optimized to
onnxruntime's BASIC level (as the ORT-format conversion does), shapes are inferred, and each
provider's list of supported operators (the ``*_supported_ops.md`` files shipped with
onnxruntime) decides which nodes it takes, with fixed input shapes required. The tool only
logs its findings; here the same functions fill one :class:`ProviderCoverage` per provider.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
from dataclasses import asdict, dataclass

from mobile_nas.export.errors import ExportError

#: Provider id → (label, supported-ops file of onnxruntime's mobile helpers).
PROVIDERS = {
    "nnapi": ("NNAPI", "nnapi_supported_ops.md"),
    "coreml_nn": ("CoreML NeuralNetwork", "coreml_supported_neuralnetwork_ops.md"),
    "coreml_mlprogram": ("CoreML MLProgram", "coreml_supported_mlprogram_ops.md"),
}
#: ``--require`` names → provider ids.
REQUIRE_CHOICES = {"nnapi": ("nnapi",), "coreml": ("coreml_nn", "coreml_mlprogram"),
                   "coreml-nn": ("coreml_nn",), "coreml-mlprogram": ("coreml_mlprogram",)}


@dataclass(frozen=True)
class ProviderCoverage:
    """How one execution provider would partition the model (onnxruntime's estimate)."""

    provider: str  # label, e.g. "NNAPI"
    partitions: int
    nodes: int  # nodes of the BASIC-optimized graph
    supported_nodes: int
    unsupported_ops: tuple[str, ...]  # "domain:Op" not in the provider's list
    dynamic_shape_nodes: int  # nodes refused because an input shape is not fixed
    suitability: str  # the tool's verdict: YES, MAYBE or NO

    @property
    def coverage(self) -> float:
        """Share of nodes the provider takes (fraction)."""
        return self.supported_nodes / self.nodes if self.nodes else 0.0

    @property
    def whole_graph(self) -> bool:
        """One partition covering every node."""
        return self.partitions == 1 and self.supported_nodes == self.nodes

    def summary(self) -> str:
        text = (f"{self.provider}: {self.partitions} partition"
                f"{'' if self.partitions == 1 else 's'}, {self.supported_nodes}/{self.nodes} "
                f"nodes ({100 * self.coverage:.0f}%)")
        why = []
        if self.unsupported_ops:
            why.append("unsupported " + ", ".join(o.split(":")[-1] for o in self.unsupported_ops))
        if self.dynamic_shape_nodes:
            why.append(f"{self.dynamic_shape_nodes} nodes with dynamic shapes")
        return text + (f" [{'; '.join(why)}]" if why else "")

    def to_json(self) -> dict:
        return {**asdict(self), "unsupported_ops": list(self.unsupported_ops),
                "coverage": round(self.coverage, 4), "whole_graph": self.whole_graph}

    @classmethod
    def from_json(cls, data: dict) -> ProviderCoverage:
        return cls(provider=data["provider"], partitions=data["partitions"],
                   nodes=data["nodes"], supported_nodes=data["supported_nodes"],
                   unsupported_ops=tuple(data["unsupported_ops"]),
                   dynamic_shape_nodes=data["dynamic_shape_nodes"],
                   suitability=data["suitability"])


@dataclass(frozen=True)
class MobileUsability:
    """onnxruntime's mobile usability analysis of one ONNX file, per provider id."""

    providers: dict[str, ProviderCoverage]
    tool: str  # which onnxruntime ran it

    def summary(self) -> str:
        return "; ".join(c.summary() for c in self.providers.values())

    def failing(self, require: tuple[str, ...] | list[str]) -> list[ProviderCoverage]:
        """The providers among ``require`` (``--require`` names) that would not take the
        whole graph."""
        ids = [p for name in require for p in REQUIRE_CHOICES[name]]
        return [self.providers[p] for p in dict.fromkeys(ids) if not self.providers[p].whole_graph]

    def to_json(self) -> dict:
        return {"tool": self.tool, **{k: v.to_json() for k, v in self.providers.items()}}

    def metadata_value(self) -> str:
        """Compact JSON for ``metadata_props["mobile_usability"]``."""
        return json.dumps({k: {"partitions": v.partitions, "nodes": v.nodes,
                               "supported_nodes": v.supported_nodes,
                               "coverage": round(v.coverage, 4),
                               "unsupported_ops": list(v.unsupported_ops)}
                           for k, v in self.providers.items()} | {"tool": self.tool},
                          separators=(",", ":"))


def check_mobile_usability(path: str | os.PathLike) -> MobileUsability:
    """Runs onnxruntime's mobile usability analysis on the ONNX file ``path`` (BASIC
    optimization first, fixed shapes required), for NNAPI, CoreML NeuralNetwork and CoreML
    MLProgram. Raises :class:`~mobile_nas.export.errors.ExportError` if the analysis fails
    (e.g. onnxruntime cannot load the model)."""
    import onnxruntime as ort
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    path = pathlib.Path(path)
    try:
        with tempfile.TemporaryDirectory(prefix="mobile-nas-usability-") as tmp:
            optimized = pathlib.Path(tmp) / path.name
            optimize_model(path, optimized, use_external_initializers=True)
            model = ModelProtoWithShapeInfo(optimized.resolve(strict=True)) \
                .model_with_shape_info
        infos = {}
        for pid, (_, ops_file) in PROVIDERS.items():
            if pid == "nnapi":
                infos[pid] = uc.check_nnapi_partitions(model, require_fixed_input_sizes=True)
            else:  # the CoreML check takes the ops file of its model format
                infos[pid] = uc.check_coreml_partitions(model, require_fixed_input_sizes=True,
                                                        config_filename=ops_file)
    except Exception as exc:  # onnxruntime and onnx raise their own exception types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"onnxruntime's mobile usability analysis failed on {str(path)!r}: "
                          f"{first}") from None
    found = {}
    for pid, (label, _) in PROVIDERS.items():
        info = infos[pid]
        found[pid] = ProviderCoverage(
            provider=label, partitions=info.num_partitions, nodes=info.num_nodes,
            supported_nodes=info.num_supported_nodes,
            unsupported_ops=tuple(sorted(info.unsupported_ops)),
            dynamic_shape_nodes=info.nodes_unsupported_due_to_dynamic_input,
            suitability=info.suitability().name)
    return MobileUsability(found, tool=f"onnxruntime {ort.__version__} mobile_helpers."
                                       f"usability_checker")
