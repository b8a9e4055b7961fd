"""Issue 12 item 8: the security headers middleware and its ``api.frame_ancestors`` setting
(validated at start-up).  The headers on the real product's pages, and OHIF under its
policy in Chromium, are proved in tests/e2e/test_smart_viewer_e2e.py."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from fastapi.testclient import TestClient
from pydantic import ValidationError

from bridge.api.security_headers import DEFAULT_POLICY, SecurityHeaders
from bridge.config import ApiSettings, Settings


def _client(frame_sources: list[str]) -> TestClient:
    app = FastAPI()

    @app.get("/page")
    async def page() -> Response:
        return PlainTextResponse("page")

    @app.get("/own")
    async def own() -> Response:
        return PlainTextResponse("own", headers={
            "Content-Security-Policy": "default-src 'self'; frame-ancestors *"})

    @app.get("/stream")
    async def stream() -> Response:
        async def parts():  # type: ignore[no-untyped-def]
            for chunk in (b"a", b"b", b"c"):
                yield chunk

        return StreamingResponse(parts(), media_type="application/octet-stream")

    app.add_middleware(SecurityHeaders, frame_sources=frame_sources)
    return TestClient(app)


def _directives(header: str) -> dict[str, str]:
    return {d.split()[0]: d.strip() for d in header.split(";") if d.strip()}


def test_every_response_gets_the_default_policy_nosniff_and_no_referrer() -> None:
    client = _client(["'self'"])
    for path in ("/page", "/stream", "/missing"):
        resp = client.get(path)
        policy = _directives(resp.headers["content-security-policy"])
        assert policy["frame-ancestors"] == "frame-ancestors 'self'"
        assert policy["script-src"] == "script-src 'self'"  # no inline or eval
        assert policy["default-src"] == "default-src 'none'"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "no-referrer"
        assert resp.headers["x-frame-options"] == "SAMEORIGIN"
    assert client.get("/stream").content == b"abc"
    assert client.get("/page").headers["content-security-policy"].startswith(DEFAULT_POLICY)


def test_a_routes_own_policy_is_kept_but_frame_ancestors_is_the_services() -> None:
    resp = _client(["'none'"]).get("/own")
    policy = _directives(resp.headers["content-security-policy"])
    assert policy == {"default-src": "default-src 'self'",
                      "frame-ancestors": "frame-ancestors 'none'"}
    assert resp.headers["x-frame-options"] == "DENY"


def test_allowed_ehr_origins_are_named_and_x_frame_options_is_left_out() -> None:
    """RFC 7034 cannot name another origin; SAMEORIGIN would forbid the EHR's frame."""
    resp = _client(["'self'", "https://ehr.example.org"]).get("/page")
    policy = _directives(resp.headers["content-security-policy"])
    assert policy["frame-ancestors"] == "frame-ancestors 'self' https://ehr.example.org"
    assert "x-frame-options" not in resp.headers


def test_frame_ancestors_default_is_self_and_origins_are_normalised() -> None:
    assert Settings().api.frame_ancestors == ["'self'"]
    api = ApiSettings(frame_ancestors=["'self'", "https://EHR.example.org:8443/",
                                       "https://*.ehr.example.org", "http://127.0.0.1:9000"])
    assert api.frame_ancestors == ["'self'", "https://ehr.example.org:8443",
                                   "https://*.ehr.example.org", "http://127.0.0.1:9000"]


@pytest.mark.parametrize("sources", [
    [], ["*"], ["https:"], ["'unsafe-inline'"], ["self"], ["https://ehr.example.org/app"],
    ["http://ehr.example.org"], ["https://ehr.example.org; script-src *"],
    ["https://ehr.example.org:99999"], ["https://user@ehr.example.org"],
    ["https://ehr.*.org"], ["'none'", "https://ehr.example.org"], ["javascript:alert(1)"],
])
def test_frame_ancestors_refuses_what_is_not_a_source_at_start_up(sources: list[str]) -> None:
    with pytest.raises(ValidationError, match="frame_ancestors"):
        ApiSettings(frame_ancestors=sources)
