"""Load mappings/*.yaml: parse with line numbers, deep-merge site overrides, validate.

Errors name the file, the line and the dotted key, e.g.
``mappings/site-a.yaml:14 patient.issuers.HOSP_A.system: not a URI``, so an interface team
can fix a site file without reading code.  Merge rule: mappings merge key by key (later file
wins), everything else (scalars, lists) is replaced whole; ``null`` resets a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from bridge.errors import MappingConfigError
from bridge.mapping.model import Mapping
from bridge.mapping.tables import DEFAULT_TABLES_DIR, Tables, load_tables

PathKey = tuple[str | int, ...]
Origins = dict[PathKey, tuple[str, int]]

_BOOL_WORDS = {"true", "false"}


def _scalar(node: yaml.ScalarNode, constructor: yaml.SafeLoader) -> Any:
    # YAML 1.1 would read yes/no/on/off as booleans and 2024-01-01 as a date; in a mapping
    # file those are codes or text, so only true/false are booleans and dates stay strings.
    if node.tag.endswith(":bool") and node.value.lower() not in _BOOL_WORDS:
        return node.value
    if node.tag.endswith(":timestamp"):
        return node.value
    return constructor.construct_object(node, deep=True)


def _convert(
    node: yaml.Node, path: PathKey, file: str, origins: Origins, constructor: yaml.SafeLoader
) -> Any:
    origins[path] = (file, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                _fail(file, key_node.start_mark.line + 1, path, "keys must be plain text")
            key = str(key_node.value)
            if key == "<<":
                _fail(file, key_node.start_mark.line + 1, path, "YAML merge keys are not supported")
            if key in out:
                _fail(file, key_node.start_mark.line + 1, (*path, key), "duplicate key")
            child = (*path, key)
            out[key] = _convert(value_node, child, file, origins, constructor)
            origins[child] = (file, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, index), file, origins, constructor)
            for index, item in enumerate(node.value)
        ]
    assert isinstance(node, yaml.ScalarNode)
    return _scalar(node, constructor)


def dotted(path: PathKey) -> str:
    """Render a key path as ``a.b[0].c``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _fail(file: str, line: int, path: PathKey, message: str) -> None:
    raise MappingConfigError(f"{file}:{line} {dotted(path)}: {message}")


def read_yaml(path: Path, origins: Origins) -> dict[str, Any]:
    """Parse one mapping file into plain data, recording each key's line in ``origins``."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MappingConfigError(f"{file}: cannot read mapping ({exc.strerror})") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise MappingConfigError(f"{file}:{line} not valid YAML: {exc.problem}") from exc
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise MappingConfigError(f"{file}:1 (top level): a mapping file must be a YAML mapping")
    data = _convert(node, (), file, origins, yaml.SafeLoader(""))
    assert isinstance(data, dict)
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` onto ``base``: dicts key by key, anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def where(loc: PathKey, origins: Origins, fallback: str) -> str:
    """``file:line`` of the deepest key of ``loc`` present in ``origins`` (else ``fallback:1``)."""
    for end in range(len(loc), 0, -1):
        found = origins.get(loc[:end])
        if found is not None:
            return f"{found[0]}:{found[1]}"
    found = origins.get(())
    return f"{found[0]}:{found[1]}" if found else f"{fallback}:1"


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def validation_problems(
    exc: ValidationError, origins: Origins, fallback: str
) -> list[tuple[str, str]]:
    """Each pydantic error of a file read by :func:`read_yaml` as ``(dotted key, line)``,
    the line reading ``file:line dotted.key: message`` (unknown and missing keys said plainly).

    Shared by every loader of a ``mappings/*.yaml`` file so their errors read the same way.
    """
    problems = []
    for error in exc.errors():
        loc: PathKey = tuple(part for part in error["loc"] if part != "[key]")
        field = dotted(loc)
        problems.append((field, f"{where(loc, origins, fallback)} {field}: {_message(error)}"))
    return problems


def _section(merged: dict[str, Any], name: str) -> dict[str, Any]:
    """A section of the merged data when it is a mapping (else the schema reports it)."""
    value = merged.get(name)
    return value if isinstance(value, dict) else {}


def _check_body_parts(
    merged: dict[str, Any], tables: Tables, origins: Origins, fallback: str
) -> list[str]:
    problems = []
    for local, term in _section(merged, "body_parts").items():
        if isinstance(term, str) and term.strip() and term.upper() not in tables.body_parts:
            loc: PathKey = ("body_parts", local)
            problems.append(
                f"{where(loc, origins, fallback)} {dotted(loc)}: {term!r} is not a Body Part "
                "Examined term of tables/body_parts.json"
            )
    return problems


def _check_schemes(
    merged: dict[str, Any], tables: Tables, origins: Origins, fallback: str
) -> list[str]:
    """Every procedure code map is under a declared Coding Scheme Designator (0008,0102):
    the engine looks maps up by the designator the study carries, and a designator it cannot
    turn into a FHIR system keeps the code as text only, so a map under an undeclared one is
    a typo or a missing ``coding_schemes`` entry (PS3.16 8.1 Table 8-1)."""
    declared = set(tables.coding_schemes) | set(_section(merged, "coding_schemes"))
    problems = []
    for scheme in _section(merged, "procedure_codes"):
        if scheme not in declared:
            loc: PathKey = ("procedure_codes", scheme)
            problems.append(
                f"{where(loc, origins, fallback)} {dotted(loc)}: coding scheme {scheme!r} "
                "is not declared: add it under coding_schemes (local designators start "
                "with 99) or use one of tables/coding_schemes.json"
            )
    return problems


def load_mapping(paths: Sequence[str | Path], *, tables_dir: str | Path | None = None) -> Mapping:
    """Load the default mapping and site overrides (in that order) into a validated Mapping.

    ``tables_dir`` defaults to ``tables/`` beside the first file when it exists, else the
    repository's mappings/tables.  Raises :class:`~bridge.errors.MappingConfigError` naming
    file, line and key for every problem found: schema errors and references to table terms
    and coding schemes are all reported in one run.
    """
    if not paths:
        raise MappingConfigError("no mapping file given")
    files = [Path(p) for p in paths]
    origins: Origins = {}
    merged: dict[str, Any] = {}
    for path in files:
        merged = deep_merge(merged, read_yaml(path, origins))
    fallback = str(files[0])
    if tables_dir is None:
        beside = files[0].parent / "tables"
        tables_dir = beside if beside.is_dir() else DEFAULT_TABLES_DIR
    tables = load_tables(tables_dir)
    problems: list[str] = []
    mapping: Mapping | None = None
    try:
        mapping = Mapping.model_validate(merged)
    except ValidationError as exc:
        problems += [line for _, line in validation_problems(exc, origins, fallback)]
    # checked on the merged data, so they are reported along with any schema errors
    problems += _check_schemes(merged, tables, origins, fallback)
    problems += _check_body_parts(merged, tables, origins, fallback)
    if problems or mapping is None:
        raise MappingConfigError("\n".join(problems))
    mapping._sources = tuple(str(p) for p in files)
    mapping._tables_dir = str(Path(tables_dir).resolve())
    return mapping
