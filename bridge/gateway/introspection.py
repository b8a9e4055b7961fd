"""RFC 7662 token introspection as the gateway's client of the EHR.

RFC 7662 2.1 obliges the introspection endpoint to authenticate the protected resource but
leaves the method open.  The gateway presents what ``gateway.introspection_auth`` says
(:meth:`~bridge.config.GatewaySettings.introspection_credentials`), reusing the outbound
auth kinds of :mod:`bridge.auth`:

* ``basic``: HTTP Basic with ``client_id`` / ``client_secret`` (the default);
* ``bearer``: a static token, as in the request of SMART App Launch 2.2's "Token
  Introspection" example (``Authorization: Bearer ...``);
* ``client_credentials`` / ``smart_backend``: a token the gateway obtains itself, with a
  client secret or with a signed assertion (SMART Backend Services, private_key_jwt),
  cached and renewed; a 401 gets one renewal and one retry (RFC 6750 3.1).

What the endpoint's answers mean for the gateway:

* no answer, 5xx, 429, a token endpoint that cannot be reached: the EHR is down or busy,
  :class:`TokenServiceUnavailable` (503 + Retry-After);
* 401, 403 or another 4xx, a token endpoint that refuses the gateway's client: the EHR
  refuses the *gateway's own* credentials (or the URL is wrong).  That is a configuration
  error, not an outage: :class:`GatewayMisconfigured` (500, no Retry-After), one error log
  line when it starts, ``/readyz`` failing with the reason (:meth:`Introspector.probe`),
  and ``/status`` showing it as ``last_auth_error``;
* 200 with ``active`` other than ``true``: the caller's token is inactive (RFC 7662 2.2),
  :class:`InvalidToken` (401).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import httpx

from bridge.auth.header import AuthorizationHeader
from bridge.auth.health import AUTH_HEALTH
from bridge.config import AuthKind, GatewaySettings
from bridge.errors import AuthError
from bridge.gateway.errors import GatewayMisconfigured, InvalidToken, TokenServiceUnavailable

log = logging.getLogger(__name__)


class Introspector:
    """Asks the EHR's introspection endpoint about tokens, authenticated as configured."""

    def __init__(self, settings: GatewaySettings, *, http: httpx.AsyncClient) -> None:
        assert settings.introspection_url is not None
        self.url = settings.introspection_url
        credentials = settings.introspection_credentials()
        self.auth_kind = credentials.kind.value
        # token kinds: built now, so a private key that cannot be loaded stops start-up
        self._auth = AuthorizationHeader(credentials, timeout=10.0)
        # a 401 is worth a renewal only for a token the gateway fetches (not a static one)
        self._renewable = self._auth.renewable and credentials.kind is not AuthKind.BEARER
        self._http = http
        #: why the endpoint refuses the gateway (None while it accepts it)
        self.refusal: str | None = None

    async def introspect(self, token: str) -> dict[str, Any]:
        """The endpoint's answer for an active token; raise :class:`InvalidToken` for an
        inactive one, or the gateway's error when the endpoint does not answer it."""
        resp = await self._post(token)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TokenServiceUnavailable(f"introspection endpoint answered {resp.status_code}")
        if resp.status_code != 200:
            raise self._refused(
                f"the EHR's introspection endpoint refuses the gateway's credentials "
                f"(HTTP {resp.status_code})",
                challenge=resp.headers.get("WWW-Authenticate"))
        self._accepted()
        try:
            body = resp.json()
        except ValueError as exc:
            raise TokenServiceUnavailable("introspection endpoint returned non-JSON") from exc
        if not isinstance(body, dict):
            raise TokenServiceUnavailable("introspection endpoint returned a non-object")
        # RFC 7662 2.2: anything but active=true is an inactive token, whatever the reason
        if body.get("active") is not True:
            raise InvalidToken("token is not active (expired, revoked or unknown)")
        return body

    async def probe(self) -> None:
        """Readiness: introspect a random token (RFC 7662 2.2: inactive, ``active: false``),
        which proves the endpoint answers and accepts the gateway's credentials."""
        try:
            await self.introspect(secrets.token_urlsafe(32))
        except InvalidToken:
            return

    async def _post(self, token: str) -> httpx.Response:
        refused: str | None = None
        while True:
            authorization = await self._authorization(refused)
            headers = {"Accept": "application/json"}
            if authorization is not None:
                headers["Authorization"] = authorization
            try:
                resp = await self._http.post(
                    self.url, data={"token": token, "token_type_hint": "access_token"},
                    headers=headers)
            except httpx.HTTPError as exc:
                raise TokenServiceUnavailable(
                    f"introspection endpoint unreachable: {type(exc).__name__}") from exc
            if resp.status_code == 401 and self._renewable and refused is None:
                refused = authorization  # the token may have been revoked: renew it once
                continue
            return resp

    async def _authorization(self, refused: str | None) -> str | None:
        try:
            return await self._auth.value(refused=refused)
        except AuthError as exc:
            if isinstance(exc.__cause__, httpx.HTTPError):  # the token endpoint is down
                raise TokenServiceUnavailable(
                    "the token endpoint for introspection is unreachable") from exc
            raise self._refused("the EHR refuses the gateway's client for introspection: "
                                f"{exc.message}") from exc

    def _refused(self, reason: str, *, challenge: str | None = None) -> GatewayMisconfigured:
        if self.refusal != reason:
            log.error("introspection refuses the gateway: configuration error",
                      extra={"introspection_url": self.url, "auth_kind": self.auth_kind,
                             "reason": reason, "challenge": (challenge or "")[:200]})
        self.refusal = reason
        AUTH_HEALTH.failed(self.url, reason)
        return GatewayMisconfigured(
            f"the gateway cannot check access tokens: {reason}; fix "
            "gateway.introspection_auth (or client_id/client_secret), retrying will not help")

    def _accepted(self) -> None:
        if self.refusal is not None:
            log.warning("introspection accepts the gateway again",
                        extra={"introspection_url": self.url, "auth_kind": self.auth_kind})
            self.refusal = None
            AUTH_HEALTH.succeeded(self.url)
