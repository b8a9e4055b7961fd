"""Access tokens as the outbound auth caches them, and reading token endpoint answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

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
    """Say what the token endpoint answered (RFC 6749 5.2: ``error`` and the optional
    ``error_description``), without echoing secrets; ``HTTP <status>`` otherwise."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        desc = body.get("error_description")
        return f"{body['error']}: {desc}" if isinstance(desc, str) and desc else body["error"]
    return f"HTTP {response.status_code}"


@dataclass(frozen=True, slots=True)
class TokenProblem:
    """Why a 200 answer of a token endpoint is not a usable token response."""

    reason: Literal["not-json", "no-access-token", "not-bearer"]
    #: the ``token_type`` issued, for "not-bearer" (None when absent)
    token_type: str | None = None
    cause: Exception | None = None


def read_token_response(response: httpx.Response, *, require_token_type: bool = False
                        ) -> dict[str, Any] | TokenProblem:
    """The JSON object of a successful token response (RFC 6749 5.1): an ``access_token``
    string and a ``token_type`` of ``Bearer`` (case-insensitive, RFC 6750 4; SMART 2.2
    fixes it).  A response without ``token_type`` is accepted as bearer unless
    ``require_token_type`` (RFC 6749 5.1 makes it REQUIRED; the launch app insists)."""
    try:
        body = response.json()
    except ValueError as exc:
        return TokenProblem("not-json", cause=exc)
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        return TokenProblem("no-access-token")
    token_type = body.get("token_type")
    if token_type is None and not require_token_type:
        return body
    if str(token_type).lower() != "bearer":
        return TokenProblem("not-bearer", None if token_type is None else str(token_type))
    return body


def token_lifetime(body: Mapping[str, Any]) -> float:
    """``expires_in`` seconds (RFC 6749 5.1, a number or numeric text), else
    :data:`DEFAULT_EXPIRES_IN`."""
    value = body.get("expires_in", DEFAULT_EXPIRES_IN)
    if isinstance(value, bool):
        return DEFAULT_EXPIRES_IN
    try:
        return float(value)
    except (TypeError, ValueError):
        return DEFAULT_EXPIRES_IN


def parse_token(response: httpx.Response, endpoint: str, *, started: float) -> AccessToken:
    """A successful token response (RFC 6749 5.1); ``started`` is when the request left,
    so the expiry is counted from before the server issued the token."""
    body = read_token_response(response)
    if isinstance(body, TokenProblem):
        message = {
            "not-json": f"token endpoint {endpoint} did not return JSON",
            "no-access-token": f"token endpoint {endpoint} returned no access_token",
            "not-bearer": f"token endpoint {endpoint} issued a {body.token_type!r} token, "
                          "not bearer",
        }[body.reason]
        raise AuthError(message) from body.cause
    scope = body.get("scope")
    return AccessToken(value=body["access_token"], expires_at=started + token_lifetime(body),
                       scope=scope if isinstance(scope, str) else None)
