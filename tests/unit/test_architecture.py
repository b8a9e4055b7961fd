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


#: the whole configuration class, which only the root and the entry points above it read
WHOLE_SETTINGS = "bridge.config.Settings"
#: functions or constructors below the root that take the whole settings anyway, and why
#: (``module:function(parameter)``); a new one needs its reason here
TAKES_WHOLE_SETTINGS: dict[str, str] = {}


def _above_the_root(module: str) -> bool:
    return module == COMPOSITION_ROOT or _entry_point(module)


def _settings_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """The local names of :data:`WHOLE_SETTINGS` (``from bridge.config import Settings
    [as X]``), and of the module ``bridge.config`` (``import bridge.config as c``...)."""
    names, modules = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "bridge.config":
            names |= {a.asname or a.name for a in node.names if a.name == "Settings"}
        elif isinstance(node, ast.ImportFrom) and node.module == "bridge":
            modules |= {a.asname or a.name for a in node.names if a.name == "config"}
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "bridge.config"}
    return names, modules


def _is_whole_settings(annotation: ast.expr, names: set[str], modules: set[str]) -> bool:
    """``annotation`` names the whole settings (also inside ``X | None``, ``Optional[X]``
    or a string annotation)."""
    for node in ast.walk(annotation):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                parsed = ast.parse(node.value, mode="eval").body
            except SyntaxError:
                continue
            if _is_whole_settings(parsed, names, modules):
                return True
        elif (isinstance(node, ast.Name) and node.id in names) \
                or (isinstance(node, ast.Attribute) and node.attr == "Settings"
                    and ast.unparse(node.value) in modules):
            return True
    return False


def _takes_whole_settings(module: str, path: Path) -> Iterator[str]:
    """``module:function(parameter)`` for every parameter annotated with the whole settings:
    of functions and methods, and of constructors made from annotated class fields
    (dataclasses, named tuples, pydantic models)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names, modules = _settings_names(tree)
    if module == "bridge.config":
        names.add("Settings")  # defined there
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None and arg.annotation is not None \
                        and _is_whole_settings(arg.annotation, names, modules):
                    yield f"{module}:{node.name}({arg.arg})"
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) \
                        and _is_whole_settings(stmt.annotation, names, modules):
                    yield f"{module}:{node.name}({stmt.target.id})"


def test_the_check_for_the_whole_settings_sees_every_spelling(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from dataclasses import dataclass\n"
                     "import bridge.config as c\n"
                     "from bridge.config import Settings as S, SmartSettings\n"
                     "def a(x: S) -> None: ...\n"
                     "async def b(*, y: 'S | None' = None) -> None: ...\n"
                     "def c1(z: c.Settings, w: SmartSettings) -> None: ...\n"
                     "@dataclass\nclass D:\n    settings: S\n    smart: SmartSettings\n",
                     encoding="utf-8")
    assert sorted(_takes_whole_settings("bridge.probe", probe)) == [
        "bridge.probe:D(settings)", "bridge.probe:a(x)", "bridge.probe:b(y)",
        "bridge.probe:c1(z)"]


def test_nothing_below_the_root_takes_the_whole_settings() -> None:
    """Each component gets its own sub-settings (issue 18): only the composition root and
    the entry points above it (cli, api) split the whole :class:`~bridge.config.Settings`;
    tests build one part from it with ``tests/support/wiring.py``."""
    found = sorted(f for m, path in MODULES.items() if not _above_the_root(m)
                   for f in _takes_whole_settings(m, path))
    assert [f for f in found if f not in TAKES_WHOLE_SETTINGS] == []
    assert [f for f in TAKES_WHOLE_SETTINGS if f not in found] == []  # no stale exception
