"""The ``audit`` settings section: strict like every section, and the audit server it
names (default: the EHR's FHIR server with its credentials)."""

from __future__ import annotations

import pytest

from bridge.audit.install import audit_fhir_settings
from bridge.config import AuditSettings, AuthKind, FhirSettings, Settings, load_settings
from bridge.errors import ConfigError
from tests.support.wiring import build_trail


def test_a_misspelt_audit_key_is_refused_by_its_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_AUDIT__ENABELD", "false")
    with pytest.raises(ConfigError, match=r"audit\.enabeld"):
        load_settings()


def test_the_audit_server_is_the_ehrs_with_its_credentials_unless_configured() -> None:
    fhir = FhirSettings(base_url="https://ehr.example.org/fhir",
                        auth={"kind": "bearer", "token": "t" * 20})  # type: ignore[arg-type]
    default = audit_fhir_settings(AuditSettings(), fhir)
    assert default.base_url == fhir.base_url and default.auth.kind is AuthKind.BEARER
    own = audit_fhir_settings(AuditSettings(base_url="https://audit.example.org/fhir/"), fhir)
    assert own.base_url == "https://audit.example.org/fhir"
    assert own.auth.kind is AuthKind.NONE  # the EHR's credentials never go elsewhere


async def test_disabled_audit_keeps_the_log_lines_and_writes_no_audit_events() -> None:
    settings = Settings(audit={"enabled": False})  # type: ignore[arg-type]
    assert build_trail(settings).sink is None
    enabled = build_trail(Settings())
    assert enabled.sink is not None
    await enabled.aclose()
