"""Bridge configuration for tests: one archive entry, one whole config, one way to write
and load it, and the state store's URL (a SQLite file, or a fresh PostgreSQL schema).

A config is the plain dict an operator writes (JSON is YAML), so tests go through
:func:`bridge.config.load_settings` (validation, defaults) as ``imaging-bridge`` does.
Test families keep their presets (sync timings, sections) in their helpers and build them
here.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bridge.config import Settings, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAPPING = REPO_ROOT / "mappings" / "default.yaml"


def archive_entry(orthanc: Any, name: str = "orthanc", *, password: str | None = None,
                  base_url: str | None = None) -> dict[str, Any]:
    """An ``archives[]`` entry for an Orthanc (``dicomweb_url``, ``username``,
    ``password``) with basic auth; ``password`` and ``base_url`` replace the server's own
    (a wrong password, a dead address)."""
    return {"name": name, "base_url": base_url or orthanc.dicomweb_url,
            "auth": {"kind": "basic", "username": orthanc.username,
                     "password": password or orthanc.password}}


def bridge_config(*, archives: Sequence[Mapping[str, Any]], fhir_url: str, state_url: str,
                  fhir: Mapping[str, Any] | None = None, sync: Mapping[str, Any] | None = None,
                  **sections: Any) -> dict[str, Any]:
    """A whole config: the archives, the FHIR server (``fhir`` adds keys such as
    ``batch_size``), the state store, ``sync`` keys and the default mapping; ``sections``
    add or replace top-level keys (``api``, ``realtime``, ``gateway``, ...)."""
    return {
        "archives": [dict(a) for a in archives],
        "fhir": {"base_url": fhir_url, **(fhir or {})},
        "state": {"url": state_url},
        "sync": dict(sync or {}),
        "mapping": {"files": [str(DEFAULT_MAPPING)]},
        **sections,
    }


def sqlite_url(directory: Path) -> str:
    """A state store in ``directory/state.db``."""
    return f"sqlite:///{directory / 'state.db'}"


def save_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write ``config`` to ``path`` (JSON, which is YAML) and return the path."""
    path.write_text(json.dumps(config))
    return path


def settings_from(path: Path, config: Mapping[str, Any]) -> Settings:
    """``config`` written to ``path`` and loaded as the bridge loads its file."""
    return load_settings(save_config(path, config))


@contextlib.contextmanager
def pg_schema(postgres: Any, *options: str) -> Iterator[str]:
    """A state-store URL whose connections work in a fresh schema of the shared database
    (``search_path`` set through the URL, with further libpq ``options`` such as
    ``-clock_timeout=10s``), dropped afterwards: several processes or apps of one test can
    share it, and no other test sees its rows."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres.url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres.url).update_query_dict(
        {"options": " ".join((f"-csearch_path={schema}", *options))})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
