"""The package's layers: a lower layer never imports a higher one, and no two packages import
each other (directly or round a cycle). Every ``import`` counts, also those inside functions.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import mobile_nas

ROOT = Path(mobile_nas.__file__).resolve().parent

#: Lowest first. A part of mobile_nas may import its own layer and those before it only.
LAYERS: tuple[str, ...] = (
    "__init__",  # the root package: __version__ only
    "errors",
    "atomic",
    "jsonrecord",  # dataclasses read back from JSON (used by export and report records)
    "registry",
    "device",
    "torch_onnx",
    "onnx_quantize",  # INT8 QDQ quantization (export --int8 and INT8 latency tables)
    "weightfile",
    "pretrained",  # shipped supernet files and their metadata
    "space",
    "models",
    "cost",  # counts and latency tables build layers (models) of a space
    "train",  # records the costs of what it trains (cost.model_costs)
    "search",  # trains supernets (train) and scores with cost tables
    "export",  # exports trained checkpoints (train), predicts latency (cost)
    "report",  # reads search runs (search.pareto) and times exports (export)
    "pipeline",  # multi-stage jobs (the demo): search, train, export, report
    "commands",
    "cli",
    "__main__",
)
RANK = {name: i for i, name in enumerate(LAYERS)}


def _module_name(path: Path) -> str:
    parts = ("mobile_nas", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every mobile_nas module the file ``path`` imports."""
    return _imports_of(path.read_text(), _module_name(path), path.name == "__init__.py")


def _imports_of(source: str, module: str, is_package: bool) -> set[str]:
    """Every mobile_nas module ``source`` (of ``module``) imports, relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            # "from mobile_nas import x": x may be a module of its own
            out.update(f"{base}.{a.name}" if base == "mobile_nas" else base
                       for a in node.names)
    return {m for m in out if m == "mobile_nas" or m.startswith("mobile_nas.")}


def _part(module: str) -> str:
    """The layer a module belongs to: its top-level package or module under mobile_nas."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1] if parts[1] in RANK else "__init__"  # mobile_nas.__version__ and such


def _graph() -> dict[str, dict[str, list[str]]]:
    """part → imported part → the modules that import it."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(ROOT.rglob("*.py")):
        src = _part(_module_name(path))
        for target in _imports(path):
            dst = _part(target)
            if dst != src:
                edges[src][dst].append(_module_name(path))
    return edges


def test_every_part_has_a_layer():
    parts = {_part(_module_name(p)) for p in ROOT.rglob("*.py")}
    names = {p.name.removesuffix(".py") for p in ROOT.iterdir()
             if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert parts <= set(RANK) and names <= set(RANK), sorted((parts | names) - set(RANK))


def test_lower_layers_never_import_higher_ones():
    bad = [f"{src} imports {dst} (in {', '.join(sorted(set(mods)))})"
           for src, targets in _graph().items() for dst, mods in targets.items()
           if RANK[dst] > RANK[src]]
    assert not bad, "\n".join(bad)


def test_no_import_cycle_between_packages():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            assert cycle is None, " -> ".join(cycle)


def test_search_and_report_are_apart():
    """The search never reaches into the report (plots are drawn by the report layer)."""
    assert "report" not in _graph().get("search", {})


def test_the_checker_sees_function_level_and_relative_imports():
    src = ("import os\n"
           "def f():\n    from mobile_nas.report.pareto import plot_pareto\n"
           "from . import costs\nfrom ..space import get_space\nimport mobile_nas.cli as c\n"
           "from mobile_nas import pretrained, __version__\n")
    found = _imports_of(src, "mobile_nas.search.outputs", is_package=False)
    assert found == {"mobile_nas.report.pareto", "mobile_nas.search", "mobile_nas.space",
                     "mobile_nas.cli", "mobile_nas.pretrained", "mobile_nas.__version__"}
    assert {_part(m) for m in found} == {"report", "search", "space", "cli", "pretrained",
                                         "__init__"}
