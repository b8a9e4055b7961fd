"""Outbound auth against in-process fakes (httpx.MockTransport): SMART Backend Services token
requests, renewal on 401, typed errors that say what the server answered."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from joserfc import jwt

from bridge.auth.health import AUTH_HEALTH
from bridge.auth.keys import generate_signing_key, load_signing_key, write_key_files
from bridge.auth.outbound import RenewingBearerAuth
from bridge.auth.smart_backend import DEFAULT_BACKEND_SCOPE, SmartBackendFetcher
from bridge.auth.tokens import AccessToken
from bridge.clock import SYSTEM_CLOCK, Clock, ManualClock
from bridge.config import AuthSettings
from bridge.errors import AuthError

FHIR = "https://ehr.test/fhir"
TOKEN_URL = "https://ehr.test/auth/token"


def _settings(tmp_path: Path, alg: str = "ES384", **extra: object) -> AuthSettings:
    files = write_key_files(generate_signing_key(alg), tmp_path)  # type: ignore[arg-type]
    return AuthSettings(kind="smart_backend", client_id="bridge-sync",
                        private_key_file=files.private_key, **extra)  # type: ignore[arg-type]


class FakeEhr:
    """Discovery and a token endpoint recording each assertion it receives."""

    def __init__(self, *, token_status: int = 200, config: dict[str, object] | None = None
                 ) -> None:
        self.assertions: list[str] = []
        self.forms: list[dict[str, list[str]]] = []
        self.token_status = token_status
        self.config = config or {
            "token_endpoint": TOKEN_URL,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"]}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/fhir/.well-known/smart-configuration":
            return httpx.Response(200, json=self.config)
        if str(request.url) == TOKEN_URL:
            form = parse_qs(request.content.decode())
            self.forms.append(form)
            self.assertions.append(form["client_assertion"][0])
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={
                    "error": "invalid_client",
                    "error_description": "signature does not match the registered key"})
            return httpx.Response(200, json={"access_token": f"at-{len(self.forms)}",
                                             "token_type": "bearer", "expires_in": 300,
                                             "scope": form["scope"][0]})
        return httpx.Response(404)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_token_request_follows_smart_backend_services(alg: str, tmp_path: Path) -> None:
    settings = _settings(tmp_path, alg)
    ehr = FakeEhr()
    fetch = SmartBackendFetcher(settings, fhir_base=FHIR, transport=httpx.MockTransport(ehr))
    token = await fetch()
    await fetch()
    assert token.value == "at-1" and token.scope == DEFAULT_BACKEND_SCOPE
    form = ehr.forms[0]
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    assert form["scope"] == [DEFAULT_BACKEND_SCOPE]
    key = load_signing_key(settings.private_key_file)  # type: ignore[arg-type]
    decoded = [jwt.decode(a, key.key, algorithms=[alg]) for a in ehr.assertions]
    header, claims = decoded[0].header, decoded[0].claims
    assert header == {"alg": alg, "kid": key.kid, "typ": "JWT"}
    assert claims["iss"] == claims["sub"] == "bridge-sync"
    assert claims["aud"] == TOKEN_URL
    assert 0 < claims["exp"] - time.time() <= 300
    assert decoded[0].claims["jti"] != decoded[1].claims["jti"]  # new assertion each time


async def test_refused_token_request_says_what_the_server_answered(tmp_path: Path) -> None:
    fetch = SmartBackendFetcher(_settings(tmp_path), fhir_base=FHIR,
                                transport=httpx.MockTransport(FakeEhr(token_status=401)))
    with pytest.raises(AuthError) as info:
        await fetch()
    assert "invalid_client: signature does not match the registered key" in info.value.message
    assert TOKEN_URL in info.value.message


async def test_server_without_the_key_alg_is_reported_before_any_token_request(
    tmp_path: Path
) -> None:
    ehr = FakeEhr(config={"token_endpoint": TOKEN_URL,
                          "token_endpoint_auth_signing_alg_values_supported": ["RS384"]})
    fetch = SmartBackendFetcher(_settings(tmp_path, "ES384"), fhir_base=FHIR,
                                transport=httpx.MockTransport(ehr))
    with pytest.raises(AuthError, match="does not accept ES384"):
        await fetch()
    assert ehr.forms == []


async def test_configured_token_url_skips_discovery(tmp_path: Path) -> None:
    ehr = FakeEhr(config={})  # discovery would fail: no token_endpoint
    fetch = SmartBackendFetcher(_settings(tmp_path, token_url=TOKEN_URL), fhir_base=FHIR,
                                transport=httpx.MockTransport(ehr))
    assert (await fetch()).value == "at-1"


def _counting_fetcher(lifetime: float = 300.0, clock: Clock = SYSTEM_CLOCK
                      ) -> tuple[list[int], object]:
    calls: list[int] = []

    async def fetch() -> AccessToken:
        calls.append(1)
        await asyncio.sleep(0)  # a real fetcher yields to the loop while it waits
        return AccessToken(value=f"t{len(calls)}", expires_at=clock.monotonic() + lifetime)

    return calls, fetch


async def test_401_renews_once_and_retries_and_concurrent_401s_share_one_renewal() -> None:
    calls, fetch = _counting_fetcher()
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        ok = request.headers["Authorization"] == "Bearer t2"
        return httpx.Response(200 if ok else 401)

    auth = RenewingBearerAuth(fetch, remote="fake")  # type: ignore[arg-type]
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(server)) as client:
        responses = await asyncio.gather(*(client.get("https://ehr.test/x") for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert len(calls) == 2  # the first token, and one renewal for all five refusals


async def test_second_401_with_a_fresh_token_is_a_typed_error_shown_in_status() -> None:
    AUTH_HEALTH.clear()
    _, fetch = _counting_fetcher()

    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, headers={
            "WWW-Authenticate": 'Bearer error="invalid_token", error_description="revoked"'})

    auth = RenewingBearerAuth(fetch, remote="https://ehr.test/fhir")  # type: ignore[arg-type]
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(server)) as client:
        with pytest.raises(AuthError, match="invalid_token"):
            await client.get("https://ehr.test/fhir/Patient")
    failure = AUTH_HEALTH.last_failure()
    assert failure is not None and failure.remote == "https://ehr.test/fhir"
    AUTH_HEALTH.clear()


@pytest.mark.parametrize(("lifetime", "renew_at"), [
    (10.0, 9.0),  # short-lived: renewed with a tenth of its lifetime left
    (3600.0, 3570.0),  # long-lived: renewed 30 s before it expires
])
async def test_a_token_is_renewed_before_it_expires(lifetime: float, renew_at: float) -> None:
    clock = ManualClock()
    calls, fetch = _counting_fetcher(lifetime=lifetime, clock=clock)
    auth = RenewingBearerAuth(fetch, clock=clock)  # type: ignore[arg-type]
    transport = httpx.MockTransport(lambda r: httpx.Response(200))
    async with httpx.AsyncClient(auth=auth, transport=transport) as client:
        await client.get("https://ehr.test/a")
        clock.advance(renew_at - 0.5)
        await client.get("https://ehr.test/b")
        assert len(calls) == 1
        clock.advance(0.5)
        await client.get("https://ehr.test/c")
        assert len(calls) == 2
        await client.get("https://ehr.test/d")
    assert len(calls) == 2


def test_access_token_repr_hides_the_token() -> None:
    assert "secret-value" not in repr(AccessToken(value="secret-value", expires_at=1.0))
    assert "secret-value" not in json.dumps(str(AccessToken("secret-value", 1.0)))
