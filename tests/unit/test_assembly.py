"""The composition root wires the parts through their constructors (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

from bridge import assembly
from bridge.config import GatewaySettings, Settings, SmartSettings, load_settings


def _settings(tmp_path: Path, *, public_url: str | None = "https://bridge.example.org/"
              ) -> Settings:
    config = {
        "archives": [{"name": "main", "base_url": "http://127.0.0.1:9/main/dicom-web"},
                     {"name": "cardio", "base_url": "http://127.0.0.1:9/cardio/dicom-web"}],
        "fhir": {"base_url": "http://127.0.0.1:9/fhir"},
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "api": {"public_url": public_url} if public_url else {},
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(json.dumps(config))
    settings = load_settings(path)
    settings.gateway = GatewaySettings(
        enabled=True, viewer_token_secret="viewer-" + "o" * 40,
        introspection_url="http://127.0.0.1:9/introspect", client_id="gateway",
        client_secret="gateway-secret-" + "o" * 20, audience="http://127.0.0.1:9/fhir")
    settings.smart = SmartSettings(enabled=True, client_id="app",
                                   iss_allowlist=["http://127.0.0.1:9/fhir"])
    return settings


async def test_the_gateway_is_built_with_the_smart_apps_session_lookups(tmp_path: Path
                                                                       ) -> None:
    parts = assembly.public_parts(_settings(tmp_path))
    assert parts.smart is not None and parts.gateway is not None
    try:
        # handed in at construction: nothing installs them later
        assert parts.gateway.session_resolver is not None
        assert parts.gateway.tokens.session_alive == parts.smart.session_alive
        assert parts.gateway.audit is parts.audit
    finally:
        await parts.gateway.aclose()


async def test_public_urls_are_computed_once_for_every_part(tmp_path: Path) -> None:
    parts = assembly.public_parts(_settings(tmp_path))
    assert parts.gateway is not None and parts.smart is not None
    try:
        assert parts.urls.api == "https://bridge.example.org"
        assert parts.gateway.public_base == parts.urls.gateway \
            == "https://bridge.example.org/dicom-web"
        assert parts.smart.redirect_uri == "https://bridge.example.org/smart/callback"
        assert [s.root for s in parts.sources] == ["https://bridge.example.org/dicom-web",
                                                  "https://bridge.example.org/dicom-web/cardio"]
    finally:
        await parts.gateway.aclose()


def test_endpoints_point_at_the_gateway_and_iid_next_to_the_api(tmp_path: Path) -> None:
    options = assembly.endpoint_options(_settings(tmp_path, public_url=None))
    assert options["extra_endpoints"][0]["address"] \
        == "http://127.0.0.1:8400/IHEInvokeImageDisplay"
