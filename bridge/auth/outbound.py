"""httpx ``Auth`` implementations for every outbound credential kind the settings allow.

Token-based kinds cache the access token and renew it shortly before it expires; a 401
answer triggers exactly one renewal and one retry of the request (RFC 6750 3.1: an expired
or revoked token gets 401 ``invalid_token``), so a token that dies mid-backfill costs one
extra round trip instead of a failed study.  A second 401 with a fresh token, or a token
endpoint that refuses us, raises :class:`AuthError` saying what the server answered, and is
recorded in :data:`bridge.auth.health.AUTH_HEALTH` for ``/status``.  The fetcher and the
cache read one injected :class:`~bridge.clock.Clock` (monotonic seconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Generator

import httpx

from bridge.auth.health import AUTH_HEALTH
from bridge.auth.smart_backend import smart_backend_fetcher
from bridge.auth.tokens import AccessToken, TokenFetcher, describe_oauth_error, parse_token
from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.config import AuthKind, AuthSettings
from bridge.errors import AuthError

__all__ = ["AccessToken", "RenewingBearerAuth", "TokenFetcher", "build_auth",
           "client_credentials_fetcher"]

#: renew this many seconds before the token's announced expiry (less for short-lived tokens)
_RENEW_MARGIN = 30.0
_RENEW_FRACTION = 0.1


class RenewingBearerAuth(httpx.Auth):
    """Bearer auth whose token comes from an async fetcher, cached and renewed; ``clock``
    must be the one the fetcher dates ``expires_at`` with."""

    def __init__(self, fetch: TokenFetcher, *, remote: str = "?",
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token: AccessToken | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.remote = remote

    async def _renew(self) -> AccessToken:
        started = self._clock.monotonic()
        try:
            token = await self._fetch()
        except AuthError as exc:
            AUTH_HEALTH.failed(self.remote, exc.message)
            raise
        AUTH_HEALTH.succeeded(self.remote)
        lifetime = max(0.0, token.expires_at - started)
        self._renew_at = token.expires_at - min(_RENEW_MARGIN, lifetime * _RENEW_FRACTION)
        return token

    async def current(self, *, refused: str | None = None) -> str:
        """The cached token, renewed when due or when ``refused`` is still the cached one
        (so many requests refused at once cause a single renewal)."""
        async with self._lock:
            stale = self._token is None or self._clock.monotonic() >= self._renew_at
            if stale or (refused is not None and self._token is not None
                         and self._token.value == refused):
                self._token = await self._renew()
            assert self._token is not None
            return self._token.value

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        value = await self.current()
        request.headers["Authorization"] = f"Bearer {value}"
        response = yield request
        if response.status_code != 401:
            return
        request.headers["Authorization"] = f"Bearer {await self.current(refused=value)}"
        response = yield request
        if response.status_code == 401:
            # RFC 6750 3: the server says why in WWW-Authenticate (error, error_description)
            why = response.headers.get("WWW-Authenticate", "no WWW-Authenticate header")
            message = f"{request.url.host} refused a freshly issued token (401): {why}"
            AUTH_HEALTH.failed(self.remote, message)
            raise AuthError(message)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("RenewingBearerAuth is async-only")


def client_credentials_fetcher(settings: AuthSettings, *, timeout: float = 30.0,
                               clock: Clock = SYSTEM_CLOCK) -> TokenFetcher:
    """OAuth 2.0 client credentials grant with a client secret (RFC 6749 4.4, Basic auth)."""
    if not (settings.token_url and settings.client_id and settings.client_secret):
        raise AuthError("client_credentials auth needs token_url, client_id, client_secret")
    token_url, client_id = settings.token_url, settings.client_id
    secret = settings.client_secret

    async def fetch() -> AccessToken:
        data = {"grant_type": "client_credentials"}
        if settings.scope:
            data["scope"] = settings.scope
        started = clock.monotonic()
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                # RFC 6749 2.3.1: client_secret_basic
                resp = await client.post(token_url, data=data,
                                         auth=(client_id, secret.get_secret_value()))
        except httpx.HTTPError as exc:
            raise AuthError(
                f"token endpoint {token_url} unreachable: {type(exc).__name__}"
            ) from exc
        if resp.status_code != 200:
            raise AuthError(
                f"token request to {token_url} refused: {describe_oauth_error(resp)}"
            )
        return parse_token(resp, token_url, started=started)

    return fetch


def build_auth(
    settings: AuthSettings, *, timeout: float = 30.0, base_url: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> httpx.Auth | None:
    """Return the httpx auth for these settings (None for ``none``).

    ``base_url`` is the remote's base (the FHIR base for SMART discovery, and the label under
    which auth failures are reported).
    """
    remote = base_url or settings.token_url or "?"
    if settings.kind is AuthKind.NONE:
        return None
    if settings.kind is AuthKind.BASIC:
        assert settings.username is not None and settings.password is not None
        return httpx.BasicAuth(settings.username, settings.password.get_secret_value())
    if settings.kind is AuthKind.BEARER:
        assert settings.token is not None
        value = settings.token.get_secret_value()

        async def static() -> AccessToken:
            return AccessToken(value=value, expires_at=float("inf"))

        return RenewingBearerAuth(static, remote=remote, clock=clock)
    if settings.kind is AuthKind.CLIENT_CREDENTIALS:
        return RenewingBearerAuth(
            client_credentials_fetcher(settings, timeout=timeout, clock=clock),
            remote=remote, clock=clock)
    if settings.kind is AuthKind.SMART_BACKEND:
        if base_url is None and settings.token_url is None:
            raise AuthError("smart_backend auth is for the FHIR server; set fhir.auth, "
                            "or token_url for another remote")
        return RenewingBearerAuth(
            smart_backend_fetcher(settings, fhir_base=base_url, timeout=timeout, clock=clock),
            remote=remote, clock=clock)
    raise AuthError(f"auth kind {settings.kind.value!r} is not supported for this remote yet")
