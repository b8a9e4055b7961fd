"""Shared inputs of the worklist unit tests: the site mapping, golden orders, a builder."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bridge.worklist.loader import load_worklist_mapping
from bridge.worklist.model import WorklistMapping

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
SITE_MAPPING = HERE / "site_worklist.yaml"


def site_mapping() -> WorklistMapping:
    return load_worklist_mapping(SITE_MAPPING)


def golden_input(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLDEN / f"{name}.input.json").read_text("utf-8"))
    return data


def ct_order(**changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The CT golden order and its Patient; ``changes`` replace top-level order fields
    (``None`` removes one)."""
    data = copy.deepcopy(golden_input("ct_order"))
    order = data["serviceRequest"]
    for key, value in changes.items():
        if value is None:
            order.pop(key, None)
        else:
            order[key] = value
    return order, data["patient"]
