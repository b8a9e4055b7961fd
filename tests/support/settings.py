"""Bridge configuration for tests: one archive entry, one whole config, one way to write
and load it.

A config is the plain dict an operator writes (JSON is YAML), so tests go through
:func:`bridge.config.load_settings` (validation, defaults) as ``imaging-bridge`` does.
Test families keep their presets (sync timings, sections) in their helpers and build them
here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
