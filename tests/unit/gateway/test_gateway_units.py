"""Gateway building blocks without servers: viewer tokens, JWKS validation, scopes, paths,
the stream rewriter and the Endpoint hook (issue 8)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from bridge.config import GatewaySettings, load_settings
from bridge.gateway.errors import BadRequest, InvalidToken
from bridge.gateway.paths import parse
from bridge.gateway.proxy import _Rewriter
from bridge.gateway.scopes import Need, grants
from bridge.gateway.tokens import TokenValidator
from bridge.gateway.viewer_tokens import ViewerTokens
from bridge.sync.endpoints import REQUIRES_ACCESS_TOKEN
from tests.support.wiring import gateway_endpoint_hooks

SECRET = "s" * 40
AUD = "https://bridge.example.org/dicom-web"


def test_viewer_token_round_trip_and_refusals() -> None:
    tokens = ViewerTokens(secret=SECRET, audience=AUD, lifetime=120)
    claims = tokens.verify(tokens.mint(patient="Patient/123"))
    assert claims.patient == "Patient/123" and claims.scope == "patient/ImagingStudy.rs"
    assert claims.expires_at - claims.issued_at <= 120
    other_aud = ViewerTokens(secret=SECRET, audience="https://elsewhere/dicom-web")
    with pytest.raises(InvalidToken):
        other_aud.verify(tokens.mint(patient="Patient/123"))
    with pytest.raises(InvalidToken):
        ViewerTokens(secret="t" * 40, audience=AUD).verify(tokens.mint(patient="x|1"))
    with pytest.raises(ValueError):
        ViewerTokens(secret="short", audience=AUD)
    with pytest.raises(ValueError):
        ViewerTokens(secret=SECRET, audience=AUD, lifetime=600)


@pytest.mark.parametrize(("scopes", "need", "ok"), [
    ({"patient/ImagingStudy.rs"}, Need.READ, True),
    ({"patient/ImagingStudy.rs"}, Need.SEARCH, True),
    ({"patient/ImagingStudy.r"}, Need.SEARCH, False),
    ({"patient/ImagingStudy.read"}, Need.SEARCH, True),
    ({"patient/*.read"}, Need.READ, True),
    ({"patient/*.cruds"}, Need.READ, True),
    ({"patient/ImagingStudy.write"}, Need.READ, False),
    ({"patient/Observation.rs"}, Need.READ, False),
    ({"user/ImagingStudy.rs"}, Need.READ, False),
    ({"patient/ImagingStudy.rs?status=available"}, Need.READ, False),
])
def test_scope_grants(scopes: set[str], need: Need, ok: bool) -> None:
    assert grants(scopes, context="patient", need=need) is ok


def test_paths_parse_and_refuse_tricks() -> None:
    t = parse("studies/1.2.3/series/4.5/instances/6.7/frames/1,2/rendered")
    assert (t.study, t.series, t.instance, t.tail) == ("1.2.3", "4.5", "6.7", "frames/1,2/rendered")
    assert parse("studies/1.2.3/series").qido_level == "series"
    assert parse("studies/1.2.3/series").upstream == "studies/1.2.3/series"
    for bad in ("studies/1.2.3/../4.5.6", "studies/1.2.3/series/x", "studies/01.2",
                "studies/1.2.3/frames/1", "studies/1.2.3/series/4.5/instances/6.7/frames/0",
                "patients/1.2"):
        with pytest.raises(BadRequest):
            parse(bad)


def test_rewriter_replaces_across_chunk_boundaries() -> None:
    old, new = b"http://archive:8042/dicom-web", b"https://gw/dicom-web"
    text = b'{"BulkDataURI":"http://archive:8042/dicom-web/studies/1"},' * 50
    for size in (1, 3, 7, 29, 30, 1000):
        r = _Rewriter(old, new)
        out = b"".join(r.feed(text[i:i + size]) for i in range(0, len(text), size)) + r.flush()
        assert out == text.replace(old, new)


async def test_jwks_mode_validates_signature_issuer_and_audience() -> None:
    key = RSAKey.generate_key(2048, private=True, auto_kid=True)
    rogue = RSAKey.generate_key(2048, private=True, auto_kid=True)
    jwks = KeySet([key]).as_dict(private=False)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=jwks)

    settings = GatewaySettings(enabled=True, validation="jwks", jwks_uri="https://ehr/jwks",
                               issuer="https://ehr", audience="https://ehr/fhir",
                               viewer_token_secret=SECRET, system_clients=["pacs"])
    validator = TokenValidator(settings, viewer=ViewerTokens(secret=SECRET, audience=AUD),
                               transport=httpx.MockTransport(handler))
    now = int(time.time())
    claims: dict[str, Any] = {"iss": "https://ehr", "aud": "https://ehr/fhir", "exp": now + 60,
                              "scope": "patient/ImagingStudy.rs", "patient": "123",
                              "client_id": "app"}

    def sign(k: RSAKey, **over: Any) -> str:
        return jwt.encode({"alg": "RS384", "kid": k.kid}, {**claims, **over}, k,
                          algorithms=["RS384"])

    info = await validator.validate(sign(key))
    assert info.kind == "smart" and info.patient == "123"
    system = await validator.validate(sign(key, patient=None, client_id="pacs",
                                           scope="system/ImagingStudy.rs"))
    assert system.kind == "system" and system.patient is None
    for bad in (sign(rogue), sign(key, iss="https://other"), sign(key, aud="https://x"),
                sign(key, exp=now - 60), "opaque-token"):
        with pytest.raises(InvalidToken):
            await validator.validate(bad)
    await validator.aclose()


def test_endpoint_hooks_point_at_the_gateway_with_requires_access_token() -> None:
    settings = load_settings(
        archives=[{"name": "pacs", "base_url": "http://pacs:8042/dicom-web"}],
        gateway={"enabled": True, "public_url": "https://bridge.example.org/dicom-web",
                 "viewer_token_secret": SECRET, "validation": "jwks",
                 "jwks_uri": "https://ehr/jwks", "issuer": "https://ehr",
                 "audience": "https://ehr/fhir"})
    hooks = gateway_endpoint_hooks(settings)

    class Archive:
        name = "pacs"
        base_url = "http://pacs:8042/dicom-web"

    assert hooks["endpoint_for"](Archive()).address == "https://bridge.example.org/dicom-web"
    resource = hooks["endpoint_resource"]("pacs", {"resourceType": "Endpoint"})
    assert resource["extension"] == [{"url": REQUIRES_ACCESS_TOKEN, "valueBoolean": True}]
    settings.gateway.enabled = False
    assert gateway_endpoint_hooks(settings) == {}


def test_gateway_settings_refuse_incomplete_configuration() -> None:
    with pytest.raises(ValueError, match="viewer_token_secret"):
        GatewaySettings(enabled=True)
    with pytest.raises(ValueError, match="introspection_url"):
        GatewaySettings(enabled=True, viewer_token_secret=SECRET)
    with pytest.raises(ValueError, match="local path"):
        GatewaySettings(enabled=True, viewer_token_secret=SECRET, validation="jwks",
                        jwks_uri="https://ehr/jwks", issuer="https://ehr",
                        audience="https://ehr/fhir", history_url="https://evil.example/")


async def test_a_viewer_token_ends_with_the_app_session_that_minted_it() -> None:
    settings = GatewaySettings(enabled=True, validation="jwks", jwks_uri="https://ehr/jwks",
                               issuer="https://ehr", audience="https://ehr/fhir",
                               viewer_token_secret=SECRET, cache_ttl=0)
    viewer = ViewerTokens(secret=SECRET, audience=AUD)
    validator = TokenValidator(settings, viewer=viewer)
    open_sessions = {"row-1"}

    async def alive(session_key: str) -> bool:
        return session_key in open_sessions

    validator.session_alive = alive
    bound = viewer.mint(patient="Patient/1", session="row-1")
    unbound = viewer.mint(patient="Patient/1")  # minted without a session: no check
    assert (await validator.validate(bound)).patient == "Patient/1"
    open_sessions.clear()  # signed out
    with pytest.raises(InvalidToken, match=r"session .* has ended"):
        await validator.validate(bound)
    assert (await validator.validate(unbound)).patient == "Patient/1"
    assert viewer.verify(bound).session == "row-1" and viewer.verify(unbound).session is None
    await validator.aclose()
