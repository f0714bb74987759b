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


def _module_level_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``probes`` modules ``name`` imports when it is imported (not inside functions, not
    under ``if TYPE_CHECKING``); ``from a import b`` counts ``a.b`` if that is a module, else ``a``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    statements: list[ast.stmt] = []
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            statements.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            statements.extend(node.body)
        else:
            statements.append(node)
    for node in statements:
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


def test_the_walker_sees_relative_and_from_imports() -> None:
    modules = _modules()
    assert "probes.ladders.model" in _module_level_imports(
        "probes.ladders.registry", modules["probes.ladders.registry"], modules
    )
    assert "probes.errors" in _module_level_imports(
        "probes.model.specs", modules["probes.model.specs"], modules
    )


def test_no_import_cycle_among_probes_modules() -> None:
    modules = _modules()
    graph = {name: _module_level_imports(name, path, modules) for name, path in modules.items()}
    assert sum(map(len, graph.values())) > len(graph), "the walker found the package's imports"
    assert _cycles(graph) == []


def test_importing_the_models_module_loads_no_task_generator_and_no_built_in_ladder_code() -> None:
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
    assert not [
        m for m in loaded if m.startswith(("probes.organism", "probes.depth_ladder", "probes.ladders"))
    ]


def test_probes_run_stays_the_sweep_once_a_run_module_is_imported(monkeypatch):
    """`probes.run` names the package probes/run/ and the function `probes.run(...)`: importing
    any probes.run.* module binds the package over the function, which must still run the sweep."""
    import probes
    import probes.run.progress  # noqa: F401  (what probes.load_model and the studies import)
    import probes.run.sweep

    monkeypatch.setattr(probes.run.sweep, "run", lambda *args, **kwargs: ("swept", args, kwargs))
    assert probes.run(ladder="organism") == ("swept", (), {"ladder": "organism"})
