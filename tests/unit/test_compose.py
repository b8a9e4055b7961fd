"""docker/compose.yaml cannot run here (no Docker engine): check it statically instead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from bridge.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _substitute(value: str) -> str:
    # ${VAR:?message} -> a dummy value, as docker compose would with .env filled in
    return re.sub(r"\$\{(\w+)(:[?-][^}]*)?\}", lambda m: f"dummy-{m.group(1).lower()}", value)


def _field_exists(path: list[str]) -> bool:
    model: type[BaseModel] = Settings
    for i, part in enumerate(path):
        fields = {name.upper(): f for name, f in model.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return False
        ann = field.annotation
        inner = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type)
                 and issubclass(a, BaseModel)]
        if i < len(path) - 1:
            if not inner:
                return False
            model = inner[0]
    return True


def test_compose_has_the_four_services_of_the_local_stack() -> None:
    assert set(_compose()["services"]) == {"orthanc", "hapi", "postgres", "bridge"}


def test_every_bridge_variable_names_a_real_setting() -> None:
    env = _compose()["services"]["bridge"]["environment"]
    bad = [k for k in env if not k.startswith("BRIDGE_")
           or not _field_exists(k.removeprefix("BRIDGE_").split("__"))]
    assert bad == []


def test_bridge_environment_validates_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("BRIDGE_"):
            monkeypatch.delenv(key)
    env = _compose()["services"]["bridge"]["environment"]
    for key, value in env.items():
        monkeypatch.setenv(key, _substitute(str(value)))
    settings = load_settings()
    assert settings.archives[0].base_url == "http://orthanc:8042/dicom-web"
    assert settings.archives[0].auth.kind.value == "basic"
    assert settings.fhir.base_url == "http://hapi:8080/fhir"
    assert settings.state.url.startswith("postgresql+psycopg://")


def test_orthanc_service_matches_the_local_dicomweb_setup() -> None:
    env = _compose()["services"]["orthanc"]["environment"]
    assert env["ORTHANC__DICOM_WEB__ROOT"] == "/dicom-web/"
    assert env["ORTHANC__AUTHENTICATION_ENABLED"] == "true"
    archive_url = _compose()["services"]["bridge"]["environment"]["BRIDGE_ARCHIVE__BASE_URL"]
    assert archive_url.endswith(env["ORTHANC__DICOM_WEB__ROOT"].rstrip("/"))


def test_dockerfile_copies_only_paths_that_exist() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (.+) \S+$", dockerfile, flags=re.M):
        for part in src.split():
            assert (ROOT / part).exists(), part


def test_secrets_are_not_hard_coded() -> None:
    text = COMPOSE.read_text()
    assert "PASSWORD: ${" in text
    assert not re.search(r"PASSWORD:\s*['\"]?[A-Za-z0-9]{4,}['\"]?\s*$", text, flags=re.M)
