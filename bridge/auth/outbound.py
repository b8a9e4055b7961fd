"""httpx ``Auth`` implementations for every outbound credential kind the settings allow.

Token-based kinds cache the access token and renew it shortly before it expires; a 401
answer triggers exactly one renewal and one retry of the request (RFC 6750 3.1: an expired
or revoked token gets 401 ``invalid_token``), so a token that dies mid-backfill costs one
extra round trip instead of a failed study.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass

import httpx

from bridge.config import AuthKind, AuthSettings
from bridge.errors import AuthError

#: renew this many seconds before the token's announced expiry
_RENEW_MARGIN = 30.0


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_at: float  # time.monotonic() based


TokenFetcher = Callable[[], Awaitable[AccessToken]]


class RenewingBearerAuth(httpx.Auth):
    """Bearer auth whose token comes from an async fetcher, cached and renewed."""

    def __init__(self, fetch: TokenFetcher) -> None:
        self._fetch = fetch
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def _current(self, *, force: bool = False) -> str:
        async with self._lock:
            now = time.monotonic()
            if force or self._token is None or self._token.expires_at - _RENEW_MARGIN <= now:
                self._token = await self._fetch()
            return self._token.value

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self._current()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self._current(force=True)}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("RenewingBearerAuth is async-only")


def _describe_oauth_error(response: httpx.Response) -> str:
    """Say what the token endpoint answered (RFC 6749 5.2), without echoing secrets."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and "error" in body:
        desc = body.get("error_description")
        return f"{body['error']}: {desc}" if desc else str(body["error"])
    return f"HTTP {response.status_code}"


def client_credentials_fetcher(settings: AuthSettings, *, timeout: float = 30.0) -> TokenFetcher:
    """OAuth 2.0 client credentials grant with a client secret (RFC 6749 4.4, Basic auth)."""
    assert settings.token_url and settings.client_id and settings.client_secret

    async def fetch() -> AccessToken:
        data = {"grant_type": "client_credentials"}
        if settings.scope:
            data["scope"] = settings.scope
        assert settings.client_id is not None and settings.client_secret is not None
        assert settings.token_url is not None
        try:
            async with httpx.AsyncClient(timeout=timeout) as client:
                resp = await client.post(
                    settings.token_url,
                    data=data,
                    auth=(settings.client_id, settings.client_secret.get_secret_value()),
                )
        except httpx.HTTPError as exc:
            raise AuthError(f"token endpoint {settings.token_url} unreachable: {exc!r}") from exc
        if resp.status_code != 200:
            raise AuthError(
                f"token request to {settings.token_url} refused: {_describe_oauth_error(resp)}"
            )
        body = resp.json()
        return AccessToken(
            value=str(body["access_token"]),
            expires_at=time.monotonic() + float(body.get("expires_in", 300)),
        )

    return fetch


def build_auth(settings: AuthSettings, *, timeout: float = 30.0) -> httpx.Auth | None:
    """Return the httpx auth for these settings (None for ``none``)."""
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

        return RenewingBearerAuth(static)
    if settings.kind is AuthKind.CLIENT_CREDENTIALS:
        return RenewingBearerAuth(client_credentials_fetcher(settings, timeout=timeout))
    raise AuthError(f"auth kind {settings.kind.value!r} is not supported for this remote yet")
