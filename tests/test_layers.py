"""The package's layers: a lower layer never imports a higher one, no two packages import
each other (directly or round a cycle), no modules inside a package import each other round a
cycle (beyond the cycles listed in KNOWN_CYCLES, which only shrink), and benchmarks/ uses the
library and public modules only, never the CLI's private ones. Every ``import`` counts, also
those inside functions; imports under ``if TYPE_CHECKING:`` (which never run) do not.

Imports sit at module level, so that a module's first lines show what it builds on; a function
imports on use only what is listed in LAZY_PACKAGES and LAZY_MODULES (each with the start-up
time it saves).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import mobile_nas

ROOT = Path(mobile_nas.__file__).resolve().parent
BENCHMARKS = ROOT.parent / "benchmarks"

#: Lowest first. A part of mobile_nas may import its own layer and those before it only.
LAYERS: tuple[str, ...] = (
    "__init__",  # the root package: __version__ only
    "errors",
    "atomic",
    "locking",  # the one inter-process file lock
    "jsonrecord",  # dataclasses read back from JSON (used by export and report records)
    "registry",
    "progress",  # the one progress bar (tqdm; whole lines in a log)
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
    tree = ast.parse(source)
    skipped = {id(n) for node in ast.walk(tree) if _type_checking_only(node)
               for stmt in node.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            # "from pkg import x": x may be a module of its own (the graph keeps the longest
            # name that is a module); the package itself runs too, except the root one
            if base != "mobile_nas":
                out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m == "mobile_nas" or m.startswith("mobile_nas.")}


def _type_checking_only(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): imports for type hints only."""
    return isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                     "typing.TYPE_CHECKING")


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
    assert found == {"mobile_nas.report.pareto", "mobile_nas.report.pareto.plot_pareto",
                     "mobile_nas.search", "mobile_nas.search.costs", "mobile_nas.space",
                     "mobile_nas.space.get_space", "mobile_nas.cli", "mobile_nas.pretrained",
                     "mobile_nas.__version__"}
    assert {_part(m) for m in found} == {"report", "search", "space", "cli", "pretrained",
                                         "__init__"}


# -- cycles between modules inside a package -------------------------------------------------
#: Module cycles tolerated: none (issue 28 removed the last ones). A cycle that is not inside
#: one of these sets, or a module joining one, fails the test; keep it empty.
KNOWN_CYCLES: tuple[frozenset[str], ...] = ()


def _module_graph() -> dict[str, set[str]]:
    """module → the mobile_nas modules it imports (names without ``mobile_nas.``; an import
    of a name inside a module counts as an import of that module)."""
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets = set()
        for target in _imports(path):
            while target and target not in paths:  # "from pkg.mod import name"
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target.removeprefix("mobile_nas."))
        graph[name.removeprefix("mobile_nas.")] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of ``graph`` with more than one node: each set of
    modules that import each other round a cycle (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def _new_cycles(graph: dict[str, set[str]],
                known: tuple[frozenset[str], ...] = KNOWN_CYCLES) -> list[str]:
    return [" <-> ".join(sorted(c)) for c in _cycles(graph)
            if not any(c <= k for k in known)]


def test_no_new_import_cycle_inside_a_package():
    new = _new_cycles(_module_graph())
    assert not new, "modules importing each other round a cycle:\n" + "\n".join(new)


def test_the_cycle_check_finds_a_cycle_and_only_a_cycle():
    chain = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": set()}
    assert _cycles(chain) == []
    looped = {**chain, "a.z": {"a.x"}, "b": {"a.x"}}
    assert _cycles(looped) == [frozenset({"a.x", "a.y", "a.z"})]
    assert _new_cycles(looped, known=()) == ["a.x <-> a.y <-> a.z"]
    assert _new_cycles(looped, known=(frozenset({"a.x", "a.y", "a.z", "a.w"}),)) == []
    # a module joining a known cycle is a new cycle
    assert _new_cycles(looped, known=(frozenset({"a.x", "a.y"}),)) == ["a.x <-> a.y <-> a.z"]


def test_type_checking_imports_do_not_count():
    src = ("from typing import TYPE_CHECKING\n"
           "if TYPE_CHECKING:\n    from mobile_nas.search.runner import SearchConfig\n"
           "from mobile_nas.registry import Registry\n")
    assert _imports_of(src, "mobile_nas.search.evaluators", is_package=False) == {
        "mobile_nas.registry", "mobile_nas.registry.Registry"}


# -- benchmarks/ as a client ------------------------------------------------------------------
def _private_cli_imports(source: str) -> set[str]:
    """The CLI modules ``source`` imports that are private (``mobile_nas.commands._x``)."""
    return {m for m in _imports_of(source, "benchmarks.script", is_package=False)
            if m.startswith(("mobile_nas.commands.", "mobile_nas.cli."))
            and any(part.startswith("_") and part not in ("__init__", "__main__")
                    for part in m.split(".")[2:])}


def test_benchmarks_import_no_private_cli_module():
    bad = {path.name: sorted(found) for path in sorted(BENCHMARKS.rglob("*.py"))
           if (found := _private_cli_imports(path.read_text()))}
    assert not bad, bad


def test_the_benchmark_check_sees_private_cli_imports():
    assert _private_cli_imports("from mobile_nas.commands._common import positive_int\n") == {
        "mobile_nas.commands._common", "mobile_nas.commands._common.positive_int"}
    assert _private_cli_imports("from mobile_nas.commands import _common\n") == {
        "mobile_nas.commands._common"}
    assert _private_cli_imports("def f():\n    import mobile_nas.commands._common as c\n")
    assert not _private_cli_imports("from mobile_nas.commands.argtypes import positive_int\n"
                                    "from mobile_nas.cost.latency import LatencyTable\n")


# -- function-local imports: only where they save start-up time -----------------------------
#: Third-party packages a function may import on use, and why: each costs start-up time
#: (import time on this project's dev machine, beside torch where marked) that
#: ``mobile-nas --help`` and most commands never need. Everything else is imported at module
#: level.
LAZY_PACKAGES: dict[str, str] = {
    "torch": "~1.9 s: spaces, latency tables, search records and the CLI parser work without",
    "torchvision": "its model zoo and datasets on top of torch: datasets and reference nets only",
    "onnx": "~1.7 s beside torch: export, checks and reference models only",
    "onnxruntime": "~0.1-0.2 s, its tools and quantization more: timing and export only",
    "optuna": "~0.1-0.2 s (more with its storages): search runs only",
    "sqlalchemy": "~0.5 s: optuna's RDB storage errors, on a shared storage only",
    "matplotlib": "~0.7 s for pyplot: plots only",
    "scipy": "~1.5 s for scipy.stats: rank statistics only",
    "fvcore": "~0.1 s beside torch, and it needs torch: MAC counts only",
    "safetensors": "safetensors.torch imports torch: weight files only",
    "fcntl": "POSIX only: the lock module imports everywhere, locks where fcntl exists",
}
#: mobile_nas modules a function may import on use, and why: each imports a heavy package at
#: module level, where a light path (the CLI parser) would otherwise load it.
LAZY_MODULES: dict[str, str] = {
    "mobile_nas.search.sampler": "subclasses optuna's BaseSampler, so importing it imports "
                                 "optuna: the search command's parser (strategy names) and "
                                 "the runner's module stay light until a search runs",
}
#: mobile_nas modules imported inside a function to break an import cycle: none (a cycle is
#: broken by moving what both sides share into a lower module, see KNOWN_CYCLES).
CYCLE_BREAKING_IMPORTS: dict[str, str] = {}


def _unlisted_local_imports(source: str, module: str, is_package: bool) -> list[str]:
    """``line: statement (why)`` for each import inside a function of ``source`` (of
    ``module``) that the lists above do not allow: a mobile_nas module not in LAZY_MODULES or
    CYCLE_BREAKING_IMPORTS, a third-party or standard module not in LAZY_PACKAGES, or a module
    the file already imports at module level (deferring it saves nothing)."""
    tree = ast.parse(source)
    skipped = {id(n) for node in ast.walk(tree) if _type_checking_only(node)
               for stmt in node.body for n in ast.walk(stmt)}
    at_top = {name for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
              for name in _imported_modules(node)}
    local = [n for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))
             and id(n) not in skipped]
    bad: dict[int, str] = {}
    for node in local:
        own = _imports_of(ast.unparse(node), module, is_package)
        for name in _imported_modules(node):
            if name.startswith("."):
                continue  # relative: a mobile_nas module, seen in `own`
            if name in at_top:
                bad[node.lineno] = f"{ast.unparse(node)} (imported at module level already)"
            elif name.split(".")[0] != "mobile_nas" and name.split(".")[0] not in LAZY_PACKAGES:
                bad[node.lineno] = f"{ast.unparse(node)} ({name.split('.')[0]} is not in " \
                                   f"LAZY_PACKAGES)"
        allowed = set(LAZY_MODULES) | set(CYCLE_BREAKING_IMPORTS)
        if own and not any(m in allowed for m in own):
            bad[node.lineno] = f"{ast.unparse(node)} (a mobile_nas module not in LAZY_MODULES)"
    return [f"{line}: {why}" for line, why in sorted(bad.items())]


def _imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return ["." * node.level + (node.module or "")]


def test_function_local_imports_are_listed():
    bad = [f"{_module_name(path)}:{found}" for path in sorted(ROOT.rglob("*.py"))
           for found in _unlisted_local_imports(path.read_text(), _module_name(path),
                                                path.name == "__init__.py")]
    assert not bad, "import these at module level (or list them with a reason):\n" + \
        "\n".join(bad)


def test_the_local_import_check_flags_what_is_not_listed():
    src = ("import json\nimport onnx\nfrom typing import TYPE_CHECKING\n"
           "if TYPE_CHECKING:\n    from mobile_nas.search.runner import SearchConfig\n"
           "def f():\n"
           "    import torch\n"  # listed package
           "    from mobile_nas.search.sampler import make_sampler\n"  # listed module
           "    from mobile_nas.space import get_space\n"  # a mobile_nas module
           "    from ..space.registry import SPACES\n"  # the same, relative
           "    import csv\n"  # standard library: cheap
           "    import onnx\n"  # imported at module level already
           "class C:\n    def m(self):\n        import pandas\n")  # not listed
    assert _unlisted_local_imports(src, "mobile_nas.search.outputs", is_package=False) == [
        "9: from mobile_nas.space import get_space (a mobile_nas module not in LAZY_MODULES)",
        "10: from ..space.registry import SPACES (a mobile_nas module not in LAZY_MODULES)",
        "11: import csv (csv is not in LAZY_PACKAGES)",
        "12: import onnx (imported at module level already)",
        "15: import pandas (pandas is not in LAZY_PACKAGES)",
    ]
    assert _unlisted_local_imports("import json\n", "mobile_nas.x", is_package=False) == []
