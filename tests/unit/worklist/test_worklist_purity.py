"""The worklist's mapper, matcher and index stay pure: of ours they import only bridge.errors,
bridge.mapping helpers and the worklist's own pure modules (no I/O, no network, no state);
the SCP refuses to accept every calling AE."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.worklist.scp import WorklistScp
from bridge.worklist.source import InMemoryWorklist

ROOM = Path(__file__).resolve().parents[3] / "bridge" / "worklist"
PURE = ("errors", "model", "loader", "mapper", "keys", "matching", "index", "orders", "mpps")
ALLOWED = {"bridge.errors"} | {f"bridge.worklist.{m}" for m in PURE}


def _ours(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m.split(".")[0] in ("bridge", "smart_app")}


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_import_only_errors_and_mapping_helpers(module: str) -> None:
    bad = {m for m in _ours(ROOM / f"{module}.py")
           if m not in ALLOWED and not m.startswith("bridge.mapping")}
    assert bad == set()


def test_the_scp_needs_an_allow_list_of_calling_ae_titles() -> None:
    with pytest.raises(ConfigError, match="calling AE titles"):
        WorklistScp(source=InMemoryWorklist(), ae_title="BRIDGE_MWL", calling_ae_titles=[" "])
