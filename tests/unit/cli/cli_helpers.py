"""Shared pieces of the CLI tests: a process environment without any bridge setting, and a
config file naming a state store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def clear_bridge_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``BRIDGE_*`` variable (settings, ``BRIDGE_CONFIG_FILE``, the test tools' own).

    ``BRIDGE_CONFIG_FILE`` is put back as it was after the test even when it was unset:
    ``--config`` sets it (load_settings), and a path left behind would configure later tests.
    """
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", "")
    for name in list(os.environ):
        if name.upper().startswith("BRIDGE_"):
            monkeypatch.delenv(name)


def bridge_env() -> dict[str, str]:
    """This process's environment without any ``BRIDGE_*`` variable, for subprocesses."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("BRIDGE_")}


def write_config(path: Path, *, state: Path) -> Path:
    path.write_text(json.dumps({
        "archives": [{"name": "arc", "base_url": "http://archive.invalid/dicom-web"}],
        "fhir": {"base_url": "http://fhir.invalid/fhir"},
        "state": {"url": f"sqlite:///{state}"},
    }))
    return path
