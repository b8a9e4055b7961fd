"""The demo's bridge config closes the admin API with a generated user (issue 12 item 6)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from bridge.config import InboundAuthSettings, load_settings

DEMO = Path(__file__).resolve().parents[2] / "docker" / "local" / "demo.py"


def _demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_under_test", DEMO)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_demo_config_requires_the_generated_admin_user(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = _demo()
    monkeypatch.setattr(demo, "_ohif_dist", lambda: str(tmp_path))
    stack = SimpleNamespace(
        orthanc=SimpleNamespace(dicomweb_url="http://127.0.0.1:1/dicom-web", username="u",
                                password="orthanc-password-0123", base_url="http://127.0.0.1:1"),
        hapi=SimpleNamespace(fhir_url="http://127.0.0.1:2/fhir"))
    ehr = SimpleNamespace(introspection_url="http://127.0.0.1:3/introspect",
                          fhir_url="http://127.0.0.1:3/fhir")
    path = tmp_path / "bridge.yaml"
    monkeypatch.setenv("BRIDGE_CONFIG_FILE", str(path))  # load_settings sets it; restored
    demo._write_config(path, stack, 8400, ehr, "gateway-secret-0123456789",
                       "stow-token-0123456789", admin_password="admin-password-0123456789")
    auth = load_settings(path).api.admin_auth
    assert isinstance(auth, InboundAuthSettings)
    assert {u: p.get_secret_value() for u, p in auth.basic_users.items()} == {
        "admin": "admin-password-0123456789"}
