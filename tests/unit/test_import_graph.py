"""The package's import graph: no cycle among ``probes`` modules, and ``probes.model.loading`` stays light."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "probes"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``probes`` modules ``name`` imports anywhere in its code, inside functions too (not
    under ``if TYPE_CHECKING``, which never runs); ``from a import b`` counts ``a.b`` if that is a
    module, else ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text("utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for statement in node.body
        for inner in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
    return {module for module in found if module in modules and module != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


def test_the_walker_finds_a_cycle_when_there_is_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_walker_sees_from_imports_and_imports_inside_functions_not_typing_ones() -> None:
    modules = _modules()
    registry = _imports("probes.ladders.registry", modules["probes.ladders.registry"], modules)
    assert "probes.ladders.model" in registry
    runner = _imports("probes.jobs.runner", modules["probes.jobs.runner"], modules)
    assert "probes.jobs.ray_executor" in runner  # imported inside execute()
    rerun = _imports("probes.store.rerun", modules["probes.store.rerun"], modules)
    assert "probes.store.store" not in rerun  # under TYPE_CHECKING only


def test_no_import_cycle_among_probes_modules() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert sum(map(len, graph.values())) > len(graph), "the walker found the package's imports"
    assert _cycles(graph) == []


def test_importing_the_loader_loads_no_task_generator_and_no_built_in_ladder_code() -> None:
    code = (
        "import json, probes.model.loading, sys; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('probes'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded = json.loads(result.stdout)
    assert "probes.model.loading" in loaded
    assert not [m for m in loaded if m.startswith("probes.tasks")], loaded
    assert not [m for m in loaded if m.startswith(("probes.ladders", "probes.builtin.training"))]


def test_the_package_top_level_holds_packages_by_role_and_few_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
