"""The import structure of ``bridge/`` and ``smart_app/`` (issue 18, "Proof").

Dependencies point one way: cli/api -> composition root (:mod:`bridge.assembly`) ->
sync/realtime/gateway/smart_app -> archive/mapping/fhir/state/auth -> errors/config.  The
graph is read from each module's syntax tree, so *every* import counts: top-level ones,
those under ``if TYPE_CHECKING:`` and those inside functions (a hidden import is still a
dependency, and a circle hidden that way is still a circle).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bridge", "smart_app")
#: alembic's environment script runs only inside alembic (it reads alembic's context)
NOT_IMPORTABLE = ("bridge.state.migrations",)
COMPOSITION_ROOT = "bridge.assembly"


def _entry_point(module: str) -> bool:
    """Who may import the composition root: the CLI's modules, the API's app and server."""
    return module == "bridge.cli" or module.startswith("bridge.cli_") \
        or _within(module, "bridge.api")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _ours(name: str) -> bool:
    return any(_within(name, p) for p in PACKAGES)


def _imported(module: str, path: Path) -> Iterator[str]:
    """Every module of ours ``module`` imports, wherever the import statement stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # ``from pkg import mod`` imports the module pkg.mod; a name imports pkg
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base


def _graph() -> dict[str, set[str]]:
    return {module: {t for t in _imported(module, path) if _ours(t) and t != module}
            for module, path in MODULES.items()}


GRAPH = _graph()


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _edges(where: str) -> list[tuple[str, str]]:
    return [(m, t) for m in sorted(GRAPH) if _within(m, where) for t in sorted(GRAPH[m])]


@pytest.mark.parametrize("module", sorted(m for m in MODULES
                                          if not any(_within(m, n) for n in NOT_IMPORTABLE)))
def test_every_module_imports(module: str) -> None:
    importlib.import_module(module)


def test_the_graph_counts_type_checking_and_function_level_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from typing import TYPE_CHECKING\n"
                     "if TYPE_CHECKING:\n    from bridge.errors import BridgeError\n"
                     "def f() -> None:\n    from . import config\n"
                     "    import bridge.sync.runner\n", encoding="utf-8")
    assert set(_imported("bridge.probe", probe)) == {
        "typing", "bridge.errors", "bridge.config", "bridge.sync.runner"}


def test_no_import_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_mapping_imports_nothing_of_ours_but_errors() -> None:
    bad = [(m, t) for m, t in _edges("bridge.mapping")
           if not (_within(t, "bridge.mapping") or t == "bridge.errors")]
    assert bad == []


@pytest.mark.parametrize("layer", ["bridge.sync", "smart_app"])
def test_sync_and_smart_app_do_not_import_the_gateway(layer: str) -> None:
    assert [(m, t) for m, t in _edges(layer) if _within(t, "bridge.gateway")] == []


def test_smart_app_uses_neither_sync_nor_state_internals() -> None:
    # the state store's public face (``bridge.state``) is allowed, its modules are not
    bad = [(m, t) for m, t in _edges("smart_app")
           if _within(t, "bridge.sync") or t.startswith("bridge.state.")]
    assert bad == []


def test_only_the_entry_points_import_the_composition_root() -> None:
    assert COMPOSITION_ROOT in MODULES
    bad = [(m, t) for m in sorted(GRAPH) for t in GRAPH[m]
           if t == COMPOSITION_ROOT and not _entry_point(m)]
    assert bad == []
