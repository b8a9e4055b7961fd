"""The FHIRPath subset the analytics views use (SQL-on-FHIR v2 "shareable" paths, pure).

FHIRPath (N1, http://hl7.org/fhirpath/N1) evaluates over collections; this subset keeps
that: every step maps a list of values to a list.  Supported:

* navigation ``a.b.c`` (lists flattened, missing elements give the empty collection);
* ``where(<path> = '<string>')`` and ``where(<path>)`` (elements whose path is true/non-empty);
* ``first()``, ``exists()``, ``empty()``, ``count()``;
* ``join('<sep>')`` (SQL-on-FHIR v2 required function), ``replace('<a>', '<b>')``;
* ``getResourceKey()`` (the resource's id) and ``getReferenceKey([Type])`` (the id part of
  a Reference of that type; SQL-on-FHIR v2 "Required additional functions").

Anything else is refused when the path is compiled (:class:`FhirPathError` naming the
offending text), so a view is checked at start-up, not when it meets data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bridge.errors import MappingConfigError

__all__ = ["FhirPathError", "Path", "compile_path"]

Collection = list[Any]
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<string>'(?:[^'\\]|\\.)*')"
                    r"|(?P<punct>[.(),=]))")


class FhirPathError(MappingConfigError):
    """A path outside the supported subset, or malformed (a view file to fix: the views
    loader names the file and the column)."""

    kind = "fhirpath"


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise FhirPathError(f"unexpected {text[pos:]!r} in {text!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


Step = Callable[[Collection, Any], Collection]


@dataclass(frozen=True)
class Path:
    """A compiled path: ``evaluate(value)`` -> collection (a list)."""

    text: str
    steps: tuple[Step, ...]

    def evaluate(self, value: Any, resource: Any = None) -> Collection:
        items: Collection = value if isinstance(value, list) else [value]
        root = value if resource is None else resource
        for step in self.steps:
            items = step(items, root)
        return items


def _child(name: str) -> Step:
    def step(items: Collection, _root: Any) -> Collection:
        out: Collection = []
        for item in items:
            if isinstance(item, dict) and name in item:
                found = item[name]
                out += found if isinstance(found, list) else [found]
        return out
    return step


def _truthy(collection: Collection) -> bool:
    return bool(collection) and collection != [False]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token = self.peek()
        if token is None or (value is not None and token[1] != value) or \
                (kind is not None and token[0] != kind):
            raise FhirPathError(f"expected {value or kind} in {self.text!r}")
        self.pos += 1
        return token[1]

    def string(self) -> str:
        raw = self.take(kind="string")[1:-1]
        return re.sub(r"\\(.)", r"\1", raw)

    def path(self, stop: set[str]) -> Path:
        steps: list[Step] = []
        while True:
            name = self.take(kind="name")
            token = self.peek()
            steps.append(self.function(name) if token and token[1] == "(" else _child(name))
            token = self.peek()
            if token is None or token[1] in stop:
                return Path(self.text, tuple(steps))
            self.take(".")

    def function(self, name: str) -> Step:
        self.take("(")
        step: Step
        if name in ("first", "exists", "empty", "count", "getResourceKey"):
            step = _SIMPLE[name]
        elif name == "join":
            sep = self.string()
            step = lambda items, _r: (  # noqa: E731
                [sep.join(str(i) for i in items)] if items else [])
        elif name == "replace":
            old = self.string()
            self.take(",")
            new = self.string()
            step = lambda items, _r: [str(i).replace(old, new) for i in items]  # noqa: E731
        elif name == "getReferenceKey":
            token = self.peek()
            wanted = self.take(kind="name") if token and token[0] == "name" else None
            step = _reference_key(wanted)
        elif name == "where":
            step = self.where()
        else:
            raise FhirPathError(f"function {name}() is not supported in {self.text!r}")
        self.take(")")
        return step

    def where(self) -> Step:
        inner = self.path({"=", ")"})
        token = self.peek()
        if token and token[1] == "=":
            self.take("=")
            literal = self.string()
            return lambda items, root: [i for i in items
                                        if literal in inner.evaluate(i, root)]
        return lambda items, root: [i for i in items if _truthy(inner.evaluate(i, root))]


def _reference_key(wanted: str | None) -> Step:
    def step(items: Collection, _root: Any) -> Collection:
        out = []
        for item in items:
            reference = item.get("reference") if isinstance(item, dict) else None
            if isinstance(reference, str) and "/" in reference:
                kind, _, key = reference.rpartition("/")
                if wanted is None or kind.rsplit("/", 1)[-1] == wanted:
                    out.append(key)
        return out
    return step


_SIMPLE: dict[str, Step] = {
    "first": lambda items, _r: items[:1],
    "exists": lambda items, _r: [bool(items)],
    "empty": lambda items, _r: [not items],
    "count": lambda items, _r: [len(items)],
    "getResourceKey": lambda items, _r: [i["id"] for i in items
                                         if isinstance(i, dict) and "id" in i],
}


def compile_path(text: str) -> Path:
    """Compile a FHIRPath expression of the supported subset (raises
    :class:`FhirPathError`)."""
    if not isinstance(text, str) or not text.strip():
        raise FhirPathError("empty path")
    parser = _Parser(text)
    path = parser.path(set())
    if parser.peek() is not None:
        raise FhirPathError(f"unexpected {parser.peek()[1]!r} in {text!r}")  # type: ignore[index]
    return path
