"""Pure parts of the SMART app: scopes, PKCE, allow-list, token response, study rows, the
OHIF files served under /viewer/, settings validation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bridge.config import SmartSettings, load_settings
from smart_app.history import study_row
from smart_app.launch import (
    LaunchError,
    check_iss,
    discover,
    grant_from_token,
    pkce_pair,
    requested_scopes,
)
from smart_app.viewer import DataSource, OhifFiles, app_config, viewer_routes
from tests.support.wiring import data_sources
from tests.unit.smart_app.servers import imaging_study

ISS = "https://ehr.example.org/fhir"


def _settings(**kw: object) -> SmartSettings:
    return SmartSettings(enabled=True, client_id="app", iss_allowlist=[ISS], **kw)


def test_scopes_v2_v1_and_standalone() -> None:
    assert requested_scopes(_settings(extra_scopes=[]), standalone=False) == (
        "launch openid fhirUser patient/Patient.r patient/ImagingStudy.rs")
    v1 = requested_scopes(_settings(scope_form="v1"), standalone=True).split()
    assert v1[0] == "launch/patient" and "launch" not in v1
    assert "patient/ImagingStudy.read" in v1 and "online_access" in v1


def test_identity_scopes_can_be_left_out() -> None:
    scope = requested_scopes(_settings(extra_scopes=[]), standalone=True, identity=False)
    assert scope == "launch/patient patient/Patient.r patient/ImagingStudy.rs"


def _discover(body: dict[str, Any]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        assert str(request.url) == f"{ISS}/.well-known/smart-configuration"
        return httpx.Response(200, json=body)

    async def run() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await discover(client, ISS)

    return asyncio.run(run())


def test_discovery_keeps_the_openid_issuer_and_revocation_endpoint_only_when_safe() -> None:
    base = {"authorization_endpoint": "https://ehr.example.org/authorize",
            "token_endpoint": "https://ehr.example.org/token",
            "code_challenge_methods_supported": ["S256"]}
    full = _discover({**base, "issuer": "https://ehr.example.org",
                      "revocation_endpoint": "https://ehr.example.org/revoke",
                      "capabilities": ["launch-ehr", "sso-openid-connect"]})
    assert full.openid_issuer == "https://ehr.example.org"
    assert full.revocation_endpoint == "https://ehr.example.org/revoke"
    # SMART 2.2: issuer is only meaningful with sso-openid-connect
    assert _discover({**base, "issuer": "https://ehr.example.org",
                      "capabilities": ["launch-ehr"]}).openid_issuer is None
    # tokens never go over plain http to another host
    unsafe = _discover({**base, "issuer": "http://idp.example.net",
                        "revocation_endpoint": "http://other.example.net/revoke",
                        "capabilities": ["sso-openid-connect"]})
    assert unsafe.openid_issuer is None and unsafe.revocation_endpoint is None


def test_pkce_is_s256_of_a_long_verifier() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    digest = hashlib.sha256(verifier.encode()).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_iss_allow_list_is_exact() -> None:
    assert check_iss(_settings(), ISS + "/") == ISS
    for bad in ("https://ehr.example.org/fhir2", "https://ehr.example.org.evil/fhir",
                "http://ehr.example.org/fhir"):
        with pytest.raises(LaunchError):
            check_iss(_settings(), bad)


def test_token_response_context_and_refresh_keeps_launch_context() -> None:
    first = grant_from_token({"access_token": "a", "token_type": "Bearer", "expires_in": 60,
                              "patient": "123", "need_patient_banner": True,
                              "fhirContext": [{"reference": "ImagingStudy/9"}],
                              "refresh_token": "r"})
    assert first["fhir_context"] == ["ImagingStudy/9"] and first["need_patient_banner"]
    again = grant_from_token({"access_token": "b", "token_type": "bearer"}, previous=first)
    assert again["patient"] == "123" and again["refresh_token"] == "r"


def test_study_row_reads_the_bridge_shape() -> None:
    row = study_row(imaging_study(4, "p"))
    assert row.uid == "1.2.826.0.1.4" and row.accession == "ACC4"
    assert row.modalities == ["CT"] and row.body_sites == ["Chest"]
    assert row.instance_count == 14 and row.year == "2020"


def test_settings_refuse_unsafe_values() -> None:
    with pytest.raises(ValueError):
        SmartSettings(enabled=True, client_id="a", iss_allowlist=[ISS],
                      standalone_iss="https://other.example.org/fhir")
    with pytest.raises(ValueError):
        SmartSettings(viewer_url_template="//evil.example/{study_uids}")
    with pytest.raises(ValueError):
        SmartSettings(enabled=True, client_id="a")  # no allow-list


def test_ohif_is_served_under_the_viewer_prefix(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text('<script>window.PUBLIC_URL="/"</script>'
                                     '<script src="/app.bundle.0123456789abcdef.js"></script>'
                                     '<link href="/app.bundle.css" rel="stylesheet">')
    (dist / "app.bundle.0123456789abcdef.js").write_text('__webpack_require__.p = "/";')
    (dist / "app.bundle.css").write_text("a{src:url(/font.woff2)}")
    (tmp_path / "secret.txt").write_text("no")
    app = FastAPI()
    app.include_router(viewer_routes(OhifFiles(dist),
                                     sources=[DataSource("pacs", "http://h/dicom-web")]))
    client = TestClient(app)
    index = client.get("/viewer/viewer?StudyInstanceUIDs=1.2&token=t")  # SPA route
    assert 'window.PUBLIC_URL="/viewer/"' in index.text
    assert 'src="/viewer/app.bundle' in index.text and 'href="/viewer/app.bundle.css' in index.text
    js = client.get("/viewer/app.bundle.0123456789abcdef.js")
    assert js.text == '__webpack_require__.p = "/viewer/";'
    assert "immutable" in js.headers["cache-control"]
    assert "url(/viewer/font.woff2)" in client.get("/viewer/app.bundle.css").text
    assert client.get("/viewer/%2e%2e/secret.txt").text != "no"  # index.html instead
    config = client.get("/viewer/app-config.js").text
    body = json.loads(config.removeprefix("window.config = ").rstrip(";\n"))
    source = body["dataSources"][0]["configuration"]
    assert source["qidoRoot"] == source["wadoRoot"] == "http://h/dicom-web"
    assert source["imageRendering"] == "wadors" and body["routerBasename"] == "/viewer"


def test_ohif_assets_are_gzipped_for_browsers_that_accept_it(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<html></html>")
    big = '__webpack_require__.p = "/";' + "var x = 1;\n" * 5000
    (dist / "app.bundle.0123456789abcdef.js").write_text(big)
    (dist / "app.bundle.css").write_text("a{}" * 1000)
    (dist / "0123456789abcdef.wasm").write_bytes(b"\0asm" + b"\0" * 5000)
    (dist / "logo.png").write_bytes(b"\x89PNG" + b"\0" * 5000)
    files = OhifFiles(dist)
    app = FastAPI()
    app.include_router(viewer_routes(files, sources=[DataSource("pacs", "/dicom-web")]))
    client = TestClient(app)
    url = "/viewer/app.bundle.0123456789abcdef.js"
    packed = client.get(url, headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding, Sec-Fetch-Dest"  # + the CSP
    assert int(packed.headers["content-length"]) < len(big) // 10
    assert packed.text.startswith('__webpack_require__.p = "/viewer/";')  # patched, then packed
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.text == packed.text
    refused = client.get(url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers
    wasm = client.get("/viewer/0123456789abcdef.wasm", headers={"Accept-Encoding": "gzip"})
    assert wasm.headers["content-encoding"] == "gzip" and wasm.content[:4] == b"\0asm"
    png = client.get("/viewer/logo.png", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in png.headers
    assert files.prefetch_urls() == ["/viewer/app.bundle.0123456789abcdef.js",
                                     "/viewer/app.bundle.css"]


def test_app_config_is_javascript() -> None:
    assert app_config(sources=[DataSource("pacs", "/dicom-web")]).startswith(
        "window.config = {")


def test_app_config_has_one_data_source_per_archive_the_default_first() -> None:
    settings = load_settings(
        archives=[{"name": "main", "base_url": "http://pacs:8042/dicom-web"},
                  {"name": "cardio", "base_url": "http://cardio:8042/dicom-web"}],
        gateway={"enabled": True, "archive": "cardio",
                 "public_url": "https://bridge.example.org/dicom-web",
                 "viewer_token_secret": "s" * 40, "validation": "jwks",
                 "jwks_uri": "https://ehr/jwks", "issuer": "https://ehr",
                 "audience": "https://ehr/fhir"})
    config = app_config(sources=data_sources(settings))
    body = json.loads(config.removeprefix("window.config = ").rstrip(";\n"))
    roots = {d["sourceName"]: d["configuration"]["wadoRoot"] for d in body["dataSources"]}
    assert roots == {"cardio": "https://bridge.example.org/dicom-web",
                     "main": "https://bridge.example.org/dicom-web/main"}
    assert body["defaultDataSourceName"] == "cardio"
    assert [d["sourceName"] for d in body["dataSources"]] == ["cardio", "main"]
