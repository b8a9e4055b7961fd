"""Access tokens as the outbound auth caches them, and reading token endpoint answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bridge.errors import AuthError

#: assumed lifetime when the token response has no expires_in (RFC 6749 5.1: RECOMMENDED)
DEFAULT_EXPIRES_IN = 300.0


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_at: float  # monotonic seconds of the fetcher's clock (bridge.clock.Clock)
    scope: str | None = None

    def __repr__(self) -> str:  # never show the token itself
        return f"AccessToken(expires_at={self.expires_at!r}, scope={self.scope!r})"


TokenFetcher = Callable[[], Awaitable[AccessToken]]


def describe_oauth_error(response: httpx.Response) -> str:
    """Say what the token endpoint answered (RFC 6749 5.2), without echoing secrets."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and "error" in body:
        desc = body.get("error_description")
        return f"{body['error']}: {desc}" if desc else str(body["error"])
    return f"HTTP {response.status_code}"


def parse_token(response: httpx.Response, endpoint: str, *, started: float) -> AccessToken:
    """A successful token response (RFC 6749 5.1); ``started`` is when the request left,
    so the expiry is counted from before the server issued the token."""
    try:
        body = response.json()
    except ValueError as exc:
        raise AuthError(f"token endpoint {endpoint} did not return JSON") from exc
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise AuthError(f"token endpoint {endpoint} returned no access_token")
    token_type = str(body.get("token_type", "bearer"))
    if token_type.lower() != "bearer":
        raise AuthError(f"token endpoint {endpoint} issued a {token_type!r} token, not bearer")
    try:
        expires_in = float(body.get("expires_in", DEFAULT_EXPIRES_IN))
    except (TypeError, ValueError):
        expires_in = DEFAULT_EXPIRES_IN
    scope = body.get("scope")
    return AccessToken(value=body["access_token"], expires_at=started + expires_in,
                       scope=scope if isinstance(scope, str) else None)
