"""The dose items as data (mappings/record/dose_items.json: which NUM items become
Observation components, their allowed UCUM units and physical ranges), loaded once."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bridge.errors import MappingConfigError

#: mappings/record next to the package in a source checkout or an installed tree
DEFAULT_RECORD_DIR = Path(__file__).resolve().parents[2] / "mappings" / "record"


@dataclass(frozen=True, slots=True)
class DoseItem:
    """One dose NUM item: DCM code, meaning, unit factors to the canonical unit, range."""

    code: str
    meaning: str
    units: dict[str, float]
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class DoseRules:
    """The accumulated-level and event-level items and the event containers."""

    accumulated: dict[str, DoseItem]
    event: dict[str, DoseItem]
    event_containers: frozenset[str]


def _items(raw: dict[str, Any]) -> dict[str, DoseItem]:
    return {
        code: DoseItem(code, spec["meaning"], {u: float(f) for u, f in spec["units"].items()},
                       float(spec["min"]), float(spec["max"]))
        for code, spec in raw.items()
    }


@cache
def load_dose_rules(directory: Path = DEFAULT_RECORD_DIR) -> DoseRules:
    """Read ``dose_items.json``; a missing or malformed file is a configuration error."""
    return read_dose_rules(directory / "dose_items.json")


@cache
def read_dose_rules(path: Path) -> DoseRules:
    """Read a dose items file (the setting ``record.dose_rules_file``); a missing or
    malformed file is a configuration error."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return DoseRules(
            accumulated=_items(raw["accumulated"]),
            event=_items(raw["event"]),
            event_containers=frozenset(raw["event_containers"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise MappingConfigError(f"cannot read the dose items {path}: {exc}") from exc
