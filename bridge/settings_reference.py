"""The settings reference (``docs/settings-reference.md``), generated from the settings models.

Every key of :class:`bridge.config.Settings`, section by section, with its type, default,
environment variable and description, so the reference cannot drift from the code (a test
compares the committed file with :func:`render_reference`).  Descriptions come from where
the models keep them: a field's ``description``, else the ``#:`` comment above it, and each
section's docstring.  Run ``imaging-bridge settings doc`` after changing ``bridge/config.py``
or ``bridge/sections/``.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bridge.config import AuthSettings, InboundAuthSettings, Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "docs" / "settings-reference.md"
ENV_PREFIX = "BRIDGE_"
#: models documented once, in a section of their own, and linked from every key using them
SHARED: dict[type[BaseModel], str] = {
    AuthSettings: "auth",
    InboundAuthSettings: "inbound-auth",
}
#: validators that make a plain ``str`` a more precise type, by function name
_STRING_KINDS = {"_http_base": "http(s) URL", "_frame_source": "origin"}
_CONSTRAINTS = ((annotated_types.Ge, "ge", ">="), (annotated_types.Gt, "gt", ">"),
                (annotated_types.Le, "le", "<="), (annotated_types.Lt, "lt", "<"),
                (annotated_types.MinLen, "min_length", "at least"),
                (annotated_types.MaxLen, "max_length", "at most"))


#: descriptions of the keys whose model gives none yet, by model and field: a ``#:`` comment
#: above the field in its settings module replaces an entry here (a test keeps this table to the
#: keys that still need it, and every key described)
FALLBACK: dict[tuple[str, str], str] = {
    ("ArchiveSettings", "auth"): "how the bridge authenticates to the archive",
    ("ArchiveSettings", "page_size"): "QIDO-RS results asked for per page (limit/offset)",
    ("ArchiveSettings", "concurrency"): "requests to the archive in flight at once",
    ("ArchiveSettings", "timeout"): "seconds a request to the archive may take",
    ("FhirSettings", "base_url"): "the FHIR R4 base of the EHR the studies are written to",
    ("FhirSettings", "auth"): "how the bridge authenticates to the FHIR server (for SMART "
        "Backend Services: ``kind: smart_backend``, the token endpoint is discovered)",
    ("FhirSettings", "batch_size"): "studies written per FHIR batch Bundle",
    ("FhirSettings", "concurrency"): "requests to the FHIR server in flight at once",
    ("FhirSettings", "timeout"): "seconds a request to the FHIR server may take",
    ("SyncSettings", "workers"): "sync workers claiming due studies in this process",
    ("SyncSettings", "claim_batch"): "due studies a worker claims at once",
    ("SyncSettings", "lease_seconds"): "seconds a claimed study stays with its worker; after "
        "that another worker may take it (a crashed process loses nothing)",
    ("SyncSettings", "max_attempts"): "tries of a study that keeps failing with a retryable "
        "error before it is recorded as failed (outages of the archive, the FHIR server or "
        "its credentials, and a Patient not yet in the EHR, wait however often they are "
        "tried)",
    ("SyncSettings", "backoff_base"): "seconds before the first retry; doubled per attempt, "
        "with jitter (a server's Retry-After is honoured)",
    ("SyncSettings", "backoff_max"): "longest wait between two retries, seconds",
    ("SyncSettings", "patient_retry_interval"): "seconds between tries of a study whose "
        "Patient is not (yet) in the EHR",
    ("MappingSettings", "files"): "the mapping files, later ones layered over earlier ones "
        "(a site file on top of the default); see mappings/README.md",
    ("ApiSettings", "host"): "address the HTTP listener binds to (behind a TLS-terminating "
        "proxy: loopback or an internal address)",
    ("ApiSettings", "port"): "port of the HTTP listener",
    ("ApiSettings", "admin_port"): "port of the admin listener (see ``admin_host``); unset: "
        "the admin routes are served beside the public ones",
    ("LogSettings", "level"): "least severe log records written",
    ("LogSettings", "json_output"): "one JSON object per line instead of text lines",
    ("GatewaySettings", "enabled"): "serve the patient-scoped DICOMweb gateway at "
        "``/dicom-web``; the sync's Endpoints then point at it",
    ("GatewaySettings", "validation"): "how EHR access tokens are validated: "
        "``introspection`` (RFC 7662) or ``jwks`` (JWT signature, RFC 9068)",
    ("GatewaySettings", "introspection_url"): "the EHR's token introspection endpoint "
        "(``introspection`` mode)",
    ("GatewaySettings", "client_secret"): "the gateway's secret at the introspection "
        "endpoint (with ``client_id``)",
    ("GatewaySettings", "jwks_uri"): "the EHR's JWK Set (``jwks`` mode)",
    ("GatewaySettings", "viewer_token_lifetime"): "seconds a viewer token minted by the "
        "SMART app is valid (at most 300)",
    ("GatewaySettings", "cache_size"): "token validations and study->patient lookups "
        "remembered at most",
    ("GatewaySettings", "history_url"): "where an IHE IID PATIENT request is redirected "
        "(a local path: the SMART app's history page)",
    ("RealtimeSettings", "delete_policy"): "what happens to our ImagingStudy when its study "
        "leaves the archive: ``delete`` it, mark it ``entered-in-error``, or ``keep`` it "
        "and record a study-gone failure",
    ("RealtimeSettings", "stow_auth"): "who may POST to the STOW-RS proxy "
        "(``/dicom-web/studies``); none configured: it answers 401 to everyone",
    ("RealtimeSettings", "stow_timeout"): "seconds a STOW-RS upload to the archive may take",
    ("RealtimeSettings", "orthanc_changes"): "pull Orthanc's ``/changes`` feed (the cursor "
        "is kept in the state store); unset: off",
    ("OrthancChangesSettings", "limit"): "changes asked for per request",
    ("SmartSettings", "enabled"): "serve the SMART on FHIR app (``/smart``, ``/app``, "
        "``/viewer``)",
    ("SmartSettings", "client_id"): "the app's client_id, as registered with the EHR",
    ("SmartSettings", "key_id"): "``kid`` of ``private_key_file``, as registered with the "
        "EHR (default: its JWK thumbprint)",
    ("SmartSettings", "scope_form"): "SMART scope syntax asked for: ``v1`` "
        "(patient/ImagingStudy.read) or ``v2`` (patient/ImagingStudy.rs)",
    ("SmartSettings", "http_timeout"): "seconds a request to the EHR may take",
    ("AuditSettings", "enabled"): "write the audit records as FHIR AuditEvents (they are "
        "logged either way)",
    ("AuditSettings", "base_url"): "FHIR base the AuditEvents go to; default "
        "``fhir.base_url``",
    ("AuditSettings", "timeout"): "seconds a request to the audit server may take",
    ("AuthSettings", "kind"): "``none``, ``basic`` (username, password), ``bearer`` "
        "(token), ``client_credentials`` (token_url, client_id, client_secret; OAuth 2.0) or "
        "``smart_backend`` (client_id, private_key_file; SMART Backend Services, "
        "private_key_jwt RS384/ES384)",
    ("AuthSettings", "username"): "``basic``: the user",
    ("AuthSettings", "password"): "``basic``: the password (placeholders such as "
        "``changeme`` are refused)",
    ("AuthSettings", "token"): "``bearer``: the static token",
    ("AuthSettings", "token_url"): "token endpoint (``client_credentials``; "
        "``smart_backend``: default discovered from ``.well-known/smart-configuration``)",
    ("AuthSettings", "client_id"): "the client registered with the authorization server",
    ("AuthSettings", "client_secret"): "``client_credentials``: the client's secret",
    ("AuthSettings", "scope"): "scopes asked for (``smart_backend`` default: "
        "system/ImagingStudy.cu system/Endpoint.cu system/Patient.rs "
        "system/ServiceRequest.rs; add system/Patient.c for patient policy create)",
    ("AuthSettings", "private_key_file"): "``smart_backend``: PEM private key, mode 0600 "
        "(``imaging-bridge keys generate`` writes one and its JWKS)",
    ("AuthSettings", "key_id"): "``smart_backend``: the ``kid`` the EHR registered "
        "(default: the key's JWK thumbprint)",
    ("InboundAuthSettings", "bearer_tokens"): "accepted bearer tokens (RFC 6750), at least "
        "16 characters each",
    ("InboundAuthSettings", "basic_users"): "accepted basic users (RFC 7617): user to "
        "password",
}


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    env: str
    description: str


def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    """``model`` and every settings model reachable from its fields, into ``seen``."""
    if model in seen:
        return
    seen.add(model)
    for field in model.model_fields.values():
        for part in (field.annotation, *get_args(field.annotation)):
            for inner in (part, *get_args(part)):
                found = _model_of(inner)
                if found is not None:
                    _models(found, seen)


def _comments() -> dict[tuple[str, str], str]:
    """``(class, field) -> text`` of the ``#:`` comment lines right above each field, read
    from the module of every settings model (bridge.config, bridge.sections.base and the
    rooms' own settings modules)."""
    models: set[type[BaseModel]] = set()
    _models(Settings, models)
    found: dict[tuple[str, str], str] = {}
    for module in sorted({sys.modules[m.__module__].__name__ for m in models}):
        found.update(_module_comments(sys.modules[module]))
    return found


def _module_comments(module: types.ModuleType) -> dict[tuple[str, str], str]:
    source = inspect.getsource(module)
    lines = source.splitlines()
    found: dict[tuple[str, str], str] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        for statement in node.body:
            if not (isinstance(statement, ast.AnnAssign)
                    and isinstance(statement.target, ast.Name)):
                continue
            above: list[str] = []
            n = statement.lineno - 2
            while n >= 0 and lines[n].strip().startswith("#:"):
                above.insert(0, lines[n].strip()[2:].strip())
                n -= 1
            if above:
                found[(node.name, statement.target.id)] = " ".join(above)
    return found


def _markdown(text: str) -> str:
    """RST-flavoured docstring text as one Markdown line (``x`` -> `x`, roles dropped)."""
    text = re.sub(r":[a-z]+:`~?(?:[\w.]+\.)?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    return " ".join(text.split()).replace("|", "\\|")


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        return (args[0] if len(args) == 1 else Union[tuple(args)]), optional  # noqa: UP007
    return annotation, False


def _type_name(annotation: Any, metadata: list[Any] | None = None) -> str:
    annotation, optional = _strip_optional(annotation)
    if optional:
        return _type_name(annotation, metadata) + " or null"
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extra = get_args(annotation)
        return _type_name(inner, [*extra, *(metadata or [])])
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in get_args(annotation))
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"map of {_type_name(key)} to {_type_name(value)}"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and annotation in SHARED:
        return f"[{annotation.__name__}](#{SHARED[annotation]})"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    names = {str: "string", int: "integer", float: "number", bool: "boolean",
             SecretStr: "secret string", Path: "path"}
    name = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    for item in metadata or []:
        function_name = getattr(getattr(item, "func", None), "__name__", "")
        if annotation is str and function_name in _STRING_KINDS:
            name = _STRING_KINDS[function_name]
    return name


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for kind, attribute, word in _CONSTRAINTS:
            if isinstance(item, kind):
                parts.append(f"{word} {getattr(item, attribute)}")
        pattern = getattr(item, "pattern", None)
        if pattern:
            parts.append(f"matching `{pattern}`")
    return f" ({', '.join(parts)})" if parts else ""


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        # the repository's own files by their path in it, never this machine's
        return str(value.relative_to(REPO_ROOT)) if value.is_relative_to(REPO_ROOT) \
            else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is PydanticUndefined or isinstance(value, BaseModel):
        return ""
    return f"`{_value(value)}`"


def _env(path: list[str]) -> str:
    return ENV_PREFIX + "__".join(p.upper() for p in path)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings section (a model) a key holds, alone or beside null or a literal."""
    annotation, _ = _strip_optional(annotation)
    candidates = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) \
        else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _rows(model: type[BaseModel], key: list[str], env: list[str] | None,
          comments: dict[tuple[str, str], str]) -> Iterator[Row]:
    """One row per key of ``model`` (``key`` its dotted prefix); a nested section's keys
    follow it, except the shared ones (linked).  ``env`` None: no variable of its own
    (inside a list, which takes JSON as a whole)."""
    for name, field in model.model_fields.items():
        description = field.description or comments.get((model.__name__, name)) \
            or FALLBACK.get((model.__name__, name), "")
        path = [*key, name]
        variable = f"`{_env([*env, name])}`" if env is not None else ""
        nested = _model_of(field.annotation)
        kind = _type_name(field.annotation, field.metadata) + _constraints(field)
        if nested is not None and nested not in SHARED:
            yield Row(".".join(path), kind, _default(field), "", _markdown(description))
            yield from _rows(nested, path, [*env, name] if env is not None else None,
                             comments)
            continue
        if nested is not None:
            variable = f"`{_env([*env, name])}__*`" if env is not None else ""
        elif env is not None and get_origin(_strip_optional(field.annotation)[0]) in (list,
                                                                                  dict):
            variable += " (JSON)"
        yield Row(".".join(path), kind, _default(field), variable, _markdown(description))
        element = _list_element_model(field.annotation)
        if element is not None and element not in SHARED:
            # a list of sections (``migration.sources``): each entry's keys, JSON as a whole
            yield from _rows(element, [*key, f"{name}[]"], None, comments)


def _list_element_model(annotation: Any) -> type[BaseModel] | None:
    """The section each entry of a list key holds, if it is a list of sections."""
    annotation, _ = _strip_optional(annotation)
    if get_origin(annotation) is not list:
        return None
    return _model_of(get_args(annotation)[0])


def _table(rows: list[Row]) -> list[str]:
    lines = ["| key | type | default | environment variable | description |",
             "|---|---|---|---|---|"]
    lines += [f"| `{r.key}` | {r.type} | {r.default} | {r.env} | {r.description} |"
              for r in rows]
    return lines


def _intro(model: type[BaseModel]) -> list[str]:
    doc = inspect.getdoc(model)
    if not doc or model.__doc__ is None or "__doc__" not in vars(model):
        return []
    return [_markdown(paragraph) for paragraph in doc.split("\n\n")] + [""]


HEADER = """\
# Settings reference

Generated from the settings models in `bridge/config.py` and `bridge/sections/` by
`imaging-bridge settings doc`; do not edit by hand (a test fails when this file is stale).

Settings come from `BRIDGE_*` environment variables first (nested keys joined with `__`),
then the YAML file given with `--config` or `BRIDGE_CONFIG_FILE`, then the defaults below.
Every key is checked at start-up: an unknown or invalid one is reported by name and the
command does not start.  Lists and maps given as environment variables are JSON
(`BRIDGE_SMART__ISS_ALLOWLIST='["https://ehr.example.org/fhir"]'`).  Several archives are a
YAML list (`archives:`) or JSON in `BRIDGE_ARCHIVES`; a single one can be given key by key
with the `archive` shortcut (`BRIDGE_ARCHIVE__BASE_URL=...`).
"""


def render_reference() -> str:
    """The whole reference, as Markdown."""
    comments = _comments()
    out = [HEADER]
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        model = _model_of(get_args(annotation)[0] if get_origin(annotation) is list
                          else annotation)
        assert model is not None, name
        title = f"`{name}`" + (" (a list)" if name == "archives" else "")
        out += [f"## {title}", ""]
        out += _intro(model)
        if name == "archives":
            out += ["Each entry of `archives` (YAML, or JSON in `BRIDGE_ARCHIVES`):", ""]
            out += _table(list(_rows(model, ["archives[]"], None, comments)))
        else:
            out += _table(list(_rows(model, [name], [name], comments)))
        out.append("")
    for model, anchor in SHARED.items():
        out += [f'<a id="{anchor}"></a>', "", f"## {model.__name__}", ""]
        out += _intro(model)
        out += _table(list(_rows(model, [], None, comments)))
        out += ["", "As environment variables: the key's own variable, then `__` and the "
                "name, e.g. `BRIDGE_FHIR__AUTH__KIND`.", ""]
    return "\n".join(out).rstrip("\n") + "\n"
