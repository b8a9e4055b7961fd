"""The id_token checks of the SMART app (OpenID Connect Core 3.1.3.7; SMART 2.2 "Scopes for
requesting identity data") against an in-process OpenID provider (httpx MockTransport)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from bridge.clock import ManualClock
from smart_app.identity import Identity, OpenIdProviders
from smart_app.launch import LaunchError

ISSUER = "https://ehr.example.org"
CLIENT = "imaging-app"
NONCE = "n0nce-" + "x" * 40
ACCESS = "access-token-value"


class Provider:
    """``/.well-known/openid-configuration`` and ``/jwks.json`` of ISSUER; counts fetches."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, private=True, auto_kid=True)
        self.published = [self.key]
        self.config_issuer = ISSUER
        self.algs: list[str] | None = ["RS256"]
        self.jwks_fetches = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            body: dict[str, Any] = {"issuer": self.config_issuer,
                                    "jwks_uri": f"{ISSUER}/jwks.json"}
            if self.algs is not None:
                body["id_token_signing_alg_values_supported"] = self.algs
            return httpx.Response(200, json=body)
        if request.url.path == "/jwks.json":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [k.as_dict(private=False)
                                                      for k in self.published]})
        return httpx.Response(404)

    def sign(self, *, key: RSAKey | None = None, alg: str = "RS256", **over: Any) -> str:
        key = key or self.key
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": CLIENT, "sub": "u-1", "iat": now, "exp": now + 300,
            "nonce": NONCE, "fhirUser": "Practitioner/77", "at_hash": _at_hash(ACCESS)}
        claims.update(over)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode({"alg": alg, "kid": key.kid}, claims, key, algorithms=[alg])


def _at_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture
def provider() -> Provider:
    return Provider()


def _verify(provider: Provider, token: str, *, nonce: str = NONCE) -> Identity:
    async def run() -> Identity:
        async with httpx.AsyncClient(transport=httpx.MockTransport(provider.handler)) as http:
            return await OpenIdProviders(http).verify(
                token, issuer=ISSUER, client_id=CLIENT, nonce=nonce, access_token=ACCESS)

    return asyncio.run(run())


def _refused(provider: Provider, token: str, *, nonce: str = NONCE) -> LaunchError:
    with pytest.raises(LaunchError) as info:
        _verify(provider, token, nonce=nonce)
    return info.value


def test_a_valid_id_token_gives_sub_and_fhir_user(provider: Provider) -> None:
    identity = _verify(provider, provider.sign())
    assert identity == Identity(sub="u-1", fhir_user="Practitioner/77")
    assert "77" not in repr(identity)
    absolute = _verify(provider, provider.sign(fhirUser="https://ehr.example.org/fhir/Patient/5"))
    assert absolute.fhir_user == "https://ehr.example.org/fhir/Patient/5"
    assert _verify(provider, provider.sign(fhirUser=None, at_hash=None)).fhir_user is None


class _FromNow(int):
    """Seconds from the moment the test runs, not from collection: a long suite ran this
    test more than 600 s after collecting it, when "now + 600" was already the past."""


def _at_run_time(change: dict[str, Any]) -> dict[str, Any]:
    return {k: int(time.time()) + int(v) if isinstance(v, _FromNow) else v
            for k, v in change.items()}


@pytest.mark.parametrize(("change", "reason"), [
    pytest.param({"iss": "https://evil.example.org"}, "(iss)", id="other-issuer"),
    pytest.param({"aud": "other-app"}, "(aud)", id="other-audience"),
    pytest.param({"aud": [CLIENT, "other-app"]}, "(aud)", id="untrusted-extra-audience"),
    pytest.param({"azp": "other-app"}, "(azp)", id="other-azp"),
    pytest.param({"exp": _FromNow(-120)}, "expired", id="expired"),
    pytest.param({"iat": _FromNow(600)}, "future", id="issued-in-the-future"),
    pytest.param({"nonce": "replayed"}, "nonce", id="wrong-nonce"),
    pytest.param({"nonce": None}, "nonce", id="no-nonce"),
    pytest.param({"sub": None}, "(sub)", id="no-subject"),
    pytest.param({"at_hash": _at_hash("another-token")}, "at_hash", id="at-hash"),
    pytest.param({"fhirUser": "Observation/1"}, "fhirUser", id="fhir-user-type"),
])
def test_claims_that_fail_oidc_validation_are_refused(
    provider: Provider, change: dict[str, Any], reason: str
) -> None:
    error = _refused(provider, provider.sign(**_at_run_time(change)))
    assert error.http_status == 401 and error.title == "Sign-in failed"
    assert "id_token" in error.detail and reason in error.detail


def test_a_tampered_or_foreign_signature_is_refused(provider: Provider) -> None:
    header, payload, signature = provider.sign().split(".")
    claims = base64.urlsafe_b64decode(payload + "==").replace(b"Practitioner/77",
                                                               b"Practitioner/1")
    forged = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    assert "signature" in _refused(provider, f"{header}.{forged}.{signature}").detail
    # signed by another key that claims the EHR's kid
    impostor = RSAKey.import_key(RSAKey.generate_key(2048, private=True).as_dict(private=True),
                                 {"kid": provider.key.kid})
    assert "signature" in _refused(provider, provider.sign(key=impostor)).detail
    assert "signed JWT" in _refused(provider, "not-a-jwt").detail


def test_alg_none_hmac_and_unannounced_algorithms_are_refused(provider: Provider) -> None:
    secret = OctKey.import_key(b"k" * 32, {"kid": provider.key.kid})
    hs = jwt.encode({"alg": "HS256", "kid": provider.key.kid},
                    {"iss": ISSUER, "aud": CLIENT, "sub": "u", "nonce": NONCE,
                     "iat": int(time.time()), "exp": int(time.time()) + 60}, secret)
    assert "signature" in _refused(provider, hs).detail
    unsigned = ".".join([base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode(),
                         hs.split(".")[1], ""])
    assert "signature" in _refused(provider, unsigned).detail
    # RS384 is fine by this app, but the EHR announces RS256 only
    assert "signature" in _refused(provider, provider.sign(alg="RS384")).detail


def test_an_openid_configuration_naming_another_issuer_is_refused(provider: Provider) -> None:
    provider.config_issuer = "https://evil.example.org"
    error = _refused(provider, provider.sign())
    assert error.http_status == 502 and "another issuer" in error.detail


def test_a_rotated_key_is_fetched_once_then_cached(provider: Provider) -> None:
    clock = ManualClock.from_system()  # the tokens are dated by the real time

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(provider.handler)) as http:
            providers = OpenIdProviders(http, clock=clock)

            async def verify(token: str) -> Identity:
                return await providers.verify(token, issuer=ISSUER, client_id=CLIENT,
                                              nonce=NONCE, access_token=ACCESS)

            await verify(provider.sign())
            await verify(provider.sign())
            assert provider.jwks_fetches == 1  # cached
            new = RSAKey.generate_key(2048, private=True, auto_kid=True)
            provider.published = [new, provider.key]
            clock.advance(29)
            with pytest.raises(LaunchError):  # fetched less than 30 s ago: not again yet
                await verify(provider.sign(key=new))
            assert provider.jwks_fetches == 1
            clock.advance(1)
            assert (await verify(provider.sign(key=new))).sub == "u-1"
            assert provider.jwks_fetches == 2
            clock.advance(300)  # five minutes old: still good ...
            await verify(provider.sign(key=new))
            assert provider.jwks_fetches == 2
            clock.advance(1)  # ... older: fetched again before use
            await verify(provider.sign(key=new))
            assert provider.jwks_fetches == 3

    asyncio.run(run())
