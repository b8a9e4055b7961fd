"""SQL-on-FHIR v2 ViewDefinitions: the analytics tables' shapes as data (pure).

A view (``mappings/record/views/<table>.json``, https://sql-on-fhir.org/ig/2.0.0/) names
its ``resource`` type, optional ``where`` paths (all must be true), and ``select`` items:
``column`` lists (``name``, ``path``, ``type``), an optional ``forEach`` path (one row per
element it yields, the columns' paths relative to that element) and nested ``select``
items.  Rows are the cross product of a resource's select items (SQL-on-FHIR v2
"Processing Algorithm", without ``forEachOrNull``, ``unionAll`` and constants).  A column
takes the single value its path yields (empty: null; several: refused unless the column
says ``"collection": true``, then joined with commas).

Paths are the subset of :mod:`bridge.record.fhirpath`.  :func:`load_views` checks every
file at start-up and raises :class:`MappingConfigError` naming the file and the column.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any

from bridge.errors import MappingConfigError
from bridge.record.fhirpath import FhirPathError, Path, compile_path

__all__ = ["DEFAULT_VIEWS", "Column", "View", "load_views"]

DEFAULT_VIEWS = FilePath(__file__).resolve().parents[2] / "mappings" / "record" / "views"
#: ViewDefinition column types (FHIR primitive names) -> the table's column types
TYPES = {"string": "str", "id": "str", "code": "str", "uri": "str", "dateTime": "str",
         "instant": "str", "date": "str", "integer": "int", "positiveInt": "int",
         "unsignedInt": "int", "decimal": "float", "boolean": "bool"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Column:
    name: str
    path: Path
    type: str
    collection: bool


@dataclass(frozen=True)
class _Select:
    columns: tuple[Column, ...]
    for_each: Path | None
    selects: tuple[_Select, ...]


@dataclass(frozen=True)
class View:
    """One compiled ViewDefinition."""

    name: str
    resource: str
    where: tuple[Path, ...]
    select: _Select
    source: FilePath

    @property
    def columns(self) -> list[tuple[str, str]]:
        """The table's columns: name and type (``str``, ``int``, ``float``, ``bool``)."""
        out: list[tuple[str, str]] = []

        def walk(select: _Select) -> None:
            out.extend((c.name, c.type) for c in select.columns)
            for inner in select.selects:
                walk(inner)
        walk(self.select)
        return out

    def rows(self, resource: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The view's rows of one resource (none for another type or a failed where)."""
        if resource.get("resourceType") != self.resource:
            return
        if not all(_true(w.evaluate(resource)) for w in self.where):
            return
        yield from _rows(self.select, resource, resource)


def _true(collection: list[Any]) -> bool:
    return bool(collection) and collection != [False]


def _value(column: Column, values: list[Any]) -> Any:
    if not values:
        return None
    if len(values) > 1:
        if not column.collection:
            raise MappingConfigError(f"column {column.name!r}: path {column.path.text!r} "
                                     f"gave {len(values)} values (set collection: true)")
        return ",".join(str(v) for v in values)
    value = values[0]
    if column.type == "int" and isinstance(value, int | float | str):
        return int(value) if str(value).lstrip("-").isdigit() else None
    if column.type == "float" and isinstance(value, int | float):
        return float(value)
    return value if column.type == "bool" else str(value) if column.type == "str" else None


def _rows(select: _Select, node: Any, resource: Any) -> Iterator[dict[str, Any]]:
    nodes = select.for_each.evaluate(node, resource) if select.for_each else [node]
    for item in nodes:
        base = {c.name: _value(c, c.path.evaluate(item, resource)) for c in select.columns}
        partials: list[dict[str, Any]] = [base]
        for inner in select.selects:
            partials = [{**p, **r} for p in partials for r in _rows(inner, item, resource)]
        yield from partials


def _compile(source: FilePath, what: str, text: Any) -> Path:
    try:
        return compile_path(text)
    except FhirPathError as exc:
        raise MappingConfigError(f"{source.name}: {what}: {exc}") from exc


def _select(source: FilePath, raw: Any, names: set[str]) -> _Select:
    if not isinstance(raw, dict):
        raise MappingConfigError(f"{source.name}: a select item must be an object")
    unknown = set(raw) - {"column", "forEach", "select"}
    if unknown:
        raise MappingConfigError(f"{source.name}: select keys not supported: "
                                 f"{', '.join(sorted(unknown))}")
    columns = []
    for n, col in enumerate(raw.get("column", []) or []):
        name = col.get("name") if isinstance(col, dict) else None
        label = f"column {name!r}" if name else f"column #{n + 1}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise MappingConfigError(f"{source.name}: {label}: name must be a SQL name")
        if name in names:
            raise MappingConfigError(f"{source.name}: {label}: name used twice")
        names.add(name)
        kind = TYPES.get(col.get("type", "string"))
        if kind is None:
            raise MappingConfigError(f"{source.name}: {label}: type {col.get('type')!r} "
                                     f"is not one of {', '.join(TYPES)}")
        columns.append(Column(name, _compile(source, label, col.get("path")), kind,
                              bool(col.get("collection", False))))
    for_each = (_compile(source, "forEach", raw["forEach"]) if "forEach" in raw else None)
    selects = tuple(_select(source, s, names) for s in raw.get("select", []) or [])
    return _Select(tuple(columns), for_each, selects)


def load_view(source: FilePath) -> View:
    """Read and check one ViewDefinition file."""
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MappingConfigError(f"{source.name}: unreadable view: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("resourceType") != "ViewDefinition":
        raise MappingConfigError(f"{source.name}: not a ViewDefinition")
    name, resource = raw.get("name"), raw.get("resource")
    if not isinstance(name, str) or not _NAME.match(name):
        raise MappingConfigError(f"{source.name}: name must be a SQL name")
    if not isinstance(resource, str) or not resource:
        raise MappingConfigError(f"{source.name}: resource (a FHIR type) missing")
    where = tuple(_compile(source, f"where #{n + 1}", w.get("path") if isinstance(w, dict)
                           else None) for n, w in enumerate(raw.get("where", []) or []))
    select = _select(source, {"select": raw.get("select", [])}, set())
    if not select.selects:
        raise MappingConfigError(f"{source.name}: no select")
    return View(name, resource, where, select, source)


def load_views(directory: FilePath = DEFAULT_VIEWS) -> dict[str, View]:
    """Every ``*.json`` view of ``directory`` by name (names unique)."""
    views: dict[str, View] = {}
    for source in sorted(directory.glob("*.json")):
        view = load_view(source)
        if view.name in views:
            raise MappingConfigError(f"{source.name}: view name {view.name!r} also in "
                                     f"{views[view.name].source.name}")
        views[view.name] = view
    return views
