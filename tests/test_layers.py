"""The package's layers, as the design states them, checked on the source.

Every ``geosal`` import in every module (also those inside functions) is read
with ``ast``: each package may depend only on the packages listed below, nothing
but the command line imports ``geosal.cli``, and neither packages nor modules
import each other in a cycle. Separate processes check that the light entry
points stay light (no torch for ``geosal.raster``, ``geosal.config`` and the
command line, no Dask for an in-process command).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from tests.paths import PROJECT

PACKAGE = PROJECT / "geosal"

ALLOWED = {
    "geosal": set(),
    "errors": set(),
    "_lazy": set(),
    "saliency": {"_lazy"},
    "raster": {"errors"},
    "config": {"errors", "saliency"},
    "models": {"errors"},
    "data": set(),
    "pipeline": {"geosal", "config", "errors", "models", "raster", "saliency"},
    "cluster": {"_lazy", "config", "errors", "models", "pipeline", "raster"},
    "archive": {"geosal", "cluster", "config", "errors", "models", "pipeline", "raster"},
    "evaluation": {"_lazy", "data", "errors", "models", "saliency"},
    "viewer": {"geosal", "errors", "raster"},
    "cli": {"archive", "cluster", "config", "errors", "evaluation", "models", "pipeline", "raster", "viewer"},
}
"""Package -> the geosal packages it may import (``geosal`` itself: only ``__version__``)."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "geosal"


def geosal_imports(path: Path) -> set[str]:
    """Every ``geosal...`` module ``path`` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split(".")[0] == "geosal":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "geosal")
    return found


MODULES = {module_name(path): geosal_imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return stack[stack.index(successor):] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_respect_the_layers(module):
    package = package_of(module)
    assert package in ALLOWED, f"{package} is a new package: give it a place in ALLOWED"
    for target in MODULES[module]:
        target_package = package_of(target)
        if target_package == package:
            continue
        assert target_package in ALLOWED[package], f"{module} imports {target}: {package} may not depend on {target_package}"
        assert target_package != "cli", f"{module} imports the command line ({target})"


def test_no_package_cycles():
    graph = defaultdict(set)
    for module, targets in MODULES.items():
        graph[package_of(module)].update(package_of(t) for t in targets if package_of(t) not in (package_of(module), "geosal"))
    assert find_cycle(graph) is None, f"package import cycle: {' -> '.join(find_cycle(graph))}"


def test_no_module_cycles():
    graph = {module: {t for t in targets if t in MODULES and t != module} for module, targets in MODULES.items()}
    graph = {module: {t for t in targets if not module.startswith(t + ".")} for module, targets in graph.items()}
    assert find_cycle(graph) is None, f"module import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("statement, absent", [
    ("import geosal.raster", "torch"),
    ("import geosal.config", "torch"),
    ("from geosal.cluster import open_executor", "distributed"),
    ("import geosal.saliency.catalog", "torch"),
    ("import geosal.cli", "torch"),
    ("import geosal.evaluation.config", "torch"),
])
def test_light_entry_points_stay_light(statement, absent):
    code = f"import sys; {statement}; assert {absent!r} not in sys.modules, '{absent} was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=PROJECT)
