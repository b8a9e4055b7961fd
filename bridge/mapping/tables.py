"""The standard code tables of mappings/tables/, loaded once per directory and cached.

Each table file is JSON with ``name``, ``source`` (the standard and the sections it comes
from), ``version`` (the edition) and ``entries``; see mappings/README.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from bridge.errors import MappingConfigError

#: mappings/tables next to the package in a source checkout or an installed tree
DEFAULT_TABLES_DIR = Path(__file__).resolve().parents[2] / "mappings" / "tables"


@dataclass(frozen=True, slots=True)
class Term:
    """A code from a standard terminology."""

    system: str
    code: str
    display: str


@dataclass(frozen=True, slots=True)
class ModalityTerm:
    """A Modality defined term: ``acquisition`` is True for members of CID 29."""

    code: str
    display: str
    acquisition: bool
    retired: bool


@dataclass(frozen=True, slots=True)
class TableInfo:
    """Where a table comes from, for the generated docs."""

    name: str
    file: str
    source: str
    version: str
    entries: int


@dataclass(frozen=True, slots=True)
class Tables:
    """All standard tables, keyed for the lookups the engine does."""

    body_parts: dict[str, Term]
    modalities: dict[str, ModalityTerm]
    laterality: dict[str, Term]
    sop_classes: dict[str, str]
    coding_schemes: dict[str, str]
    info: tuple[TableInfo, ...]


def _read(directory: Path, name: str) -> dict[str, Any]:
    path = directory / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingConfigError(f"{path}: cannot read table ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise MappingConfigError(f"{path}:{exc.lineno} not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise MappingConfigError(f"{path}: a table needs an 'entries' object")
    for key in ("source", "version"):
        if not isinstance(data.get(key), str):
            raise MappingConfigError(f"{path}: a table must record its '{key}'")
    return data


def _info(directory: Path, name: str, data: dict[str, Any]) -> TableInfo:
    return TableInfo(
        name=name,
        file=f"{directory.name}/{name}.json",
        source=data["source"],
        version=data["version"],
        entries=len(data["entries"]),
    )


def _terms(data: dict[str, Any], path: str) -> dict[str, Term]:
    system = data.get("system")
    out: dict[str, Term] = {}
    for key, entry in data["entries"].items():
        try:
            out[key] = Term(system=str(system), code=str(entry["code"]), display=entry["display"])
        except (KeyError, TypeError) as exc:
            raise MappingConfigError(f"{path}: entry {key!r} needs code and display") from exc
    return out


@cache
def _load(directory: Path) -> Tables:
    raw = {
        name: _read(directory, name)
        for name in ("body_parts", "modalities", "laterality", "sop_classes", "coding_schemes")
    }
    try:
        modalities = {
            code: ModalityTerm(
                code=code,
                display=entry["display"],
                acquisition=bool(entry.get("acquisition", False)),
                retired=bool(entry.get("retired", False)),
            )
            for code, entry in raw["modalities"]["entries"].items()
        }
        sop_classes = {uid: entry["name"] for uid, entry in raw["sop_classes"]["entries"].items()}
    except (KeyError, TypeError) as exc:
        raise MappingConfigError(f"{directory}: malformed modalities or sop_classes table") from exc
    return Tables(
        body_parts=_terms(raw["body_parts"], str(directory / "body_parts.json")),
        modalities=modalities,
        laterality=_terms(raw["laterality"], str(directory / "laterality.json")),
        sop_classes=sop_classes,
        coding_schemes={k: str(v) for k, v in raw["coding_schemes"]["entries"].items()},
        info=tuple(_info(directory, name, data) for name, data in raw.items()),
    )


def load_tables(directory: str | Path | None = None) -> Tables:
    """Load (once, then from cache) the tables in ``directory`` (default mappings/tables)."""
    path = Path(directory) if directory is not None else DEFAULT_TABLES_DIR
    return _load(path.resolve())
