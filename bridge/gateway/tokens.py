"""Bearer token validation for the gateway (SMART Imaging Access; RFC 6750, 7662, 7519).

Three kinds of token are accepted:

* **viewer tokens** minted by the SMART app (:mod:`bridge.gateway.viewer_tokens`), told
  apart by their JWT ``typ``; verified locally with the shared HMAC key;
* **EHR SMART access tokens**, validated either by RFC 7662 introspection (POST the token
  to the EHR's introspection endpoint, the gateway authenticated as configured, see
  :mod:`bridge.gateway.introspection`; ``active``, ``exp``, ``scope``, ``patient``,
  ``client_id``, optional ``aud``) or as a JWT against the EHR's JWKS (signature, and the
  ``iss`` and ``aud`` the settings require, ``exp``/``nbf``), as configured;
* **system tokens**: EHR tokens with ``system/`` scopes, accepted only for the client ids
  listed in ``gateway.system_clients`` (SMART Backend Services); they carry no patient.

Results, valid and invalid alike, are cached by the token's SHA-256 for ``cache_ttl``
seconds (never past the token's ``exp``) in a bounded LRU (:class:`bridge.cache.TtlCache`),
so a viewer loading hundreds of frames costs one introspection.  With introspection a
revocation is therefore seen within ``cache_ttl``; a JWT checked against the JWKS is
self-contained (RFC 9068), so a revocation at the EHR is not seen and only the token's
``exp`` ends it.  The JWKS is fetched again when a token names an unknown key (at most
every 30 s) and when it is 5 minutes old.  Time is read from the injected
:class:`~bridge.clock.Clock`: monotonic for the cache and the JWKS age, wall time for
``exp``/``nbf`` (RFC 7519 4.1.4-4.1.5).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bridge.cache import TtlCache
from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.config import GatewaySettings, TokenValidation
from bridge.gateway.errors import InvalidToken, TokenServiceUnavailable
from bridge.gateway.introspection import Introspector
from bridge.gateway.viewer_tokens import TOKEN_TYPE, ViewerTokens
from bridge.httpclient import HttpClient

log = logging.getLogger(__name__)

TokenKind = Literal["viewer", "smart", "system"]
#: signature algorithms accepted on EHR JWTs (SMART asks for RS384/ES384 support)
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384")
_JWKS_MIN_REFRESH = 30.0  # seconds between JWKS refetches for an unknown kid
#: seconds a fetched JWKS is trusted before it is fetched again, so a key the EHR withdraws
#: (e.g. after a compromise) stops being accepted (RFC 7517 publishes the *current* keys)
_JWKS_MAX_AGE = 300.0


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a validated token allows: who, which patient, which scopes, until when."""

    kind: TokenKind
    scopes: frozenset[str]
    #: the patient context: a FHIR Patient id / ``Patient/id`` or ``system|value``;
    #: None for system tokens
    patient: str | None
    client_id: str | None
    expires_at: float | None  # epoch seconds
    #: a viewer token's ``sid``: the SMART app session that minted it (for the audit trail)
    session: str | None = None

    def __repr__(self) -> str:  # no patient in logs
        return f"TokenInfo(kind={self.kind!r}, client_id={self.client_id!r})"


def _scopes(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):  # some servers send a JSON array
        return frozenset(str(v) for v in value)
    return frozenset()


def _audiences(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


class TokenValidator:
    """Validates bearer tokens; one per gateway.  ``aclose()`` when done."""

    def __init__(
        self,
        settings: GatewaySettings,
        *,
        viewer: ViewerTokens,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        session_alive: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.settings = settings
        self.viewer = viewer
        self._clock = clock
        #: the SMART app's check: is the session (``sid`` of a viewer token) still open?
        self.session_alive = session_alive
        self._http = HttpClient(timeout=10.0, transport=transport)
        self.introspector: Introspector | None = None
        if settings.validation is TokenValidation.INTROSPECTION:
            self.introspector = Introspector(settings, http=self._http)
        self._cache: TtlCache[str, TokenInfo | InvalidToken] = TtlCache(
            ttl=settings.cache_ttl, maxsize=settings.cache_size, clock=clock)
        self._jwks: KeySet | None = None
        #: monotonic time of the last JWKS fetch attempt (None: never tried)
        self._jwks_fetched: float | None = None
        self._jwks_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def ready(self) -> None:
        """Readiness (``/readyz``): raise the error a token check would meet now, e.g.
        :class:`~bridge.gateway.errors.GatewayMisconfigured` when the introspection endpoint
        refuses the gateway's credentials."""
        if self.introspector is not None:
            await self.introspector.probe()
        else:
            await self._keyset(refresh=False)

    async def validate(self, token: str) -> TokenInfo:
        """The token's :class:`TokenInfo`, or raise :class:`InvalidToken` (401)."""
        if not token or len(token) > 8192:
            raise InvalidToken("bearer token missing or too long")
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cache.get(key)
        if isinstance(cached, InvalidToken):
            raise InvalidToken(cached.message)
        if cached is not None:
            if cached.expires_at is not None and cached.expires_at <= self._clock.time():
                raise InvalidToken("token expired")
            return cached
        try:
            info = await self._validate(token)
        except InvalidToken as exc:
            self._cache.put(key, exc)
            raise
        ttl = self.settings.cache_ttl
        if info.expires_at is not None:
            ttl = min(ttl, info.expires_at - self._clock.time())
        self._cache.put(key, info, ttl=ttl)
        return info

    async def _validate(self, token: str) -> TokenInfo:
        if self._is_viewer_token(token):
            claims = self.viewer.verify(token)
            if claims.session is not None and self.session_alive is not None \
                    and not await self.session_alive(claims.session):
                raise InvalidToken("the app session that opened this viewer has ended "
                                   "(signed out or expired)")
            return TokenInfo(kind="viewer", scopes=_scopes(claims.scope), patient=claims.patient,
                             client_id=None, expires_at=float(claims.expires_at),
                             session=claims.session)
        if self.introspector is not None:
            body = await self.introspector.introspect(token)
        else:
            body = await self._verify_jwt(token)
        return self._info_from_claims(body)

    @staticmethod
    def _is_viewer_token(token: str) -> bool:
        if token.count(".") != 2:
            return False
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError):
            return False
        return header.get("typ") == TOKEN_TYPE

    # --- JWT against the EHR's JWKS (RFC 7515 / 7517 / 9068) --------------------------------

    async def _keyset(self, *, refresh: bool) -> KeySet:
        async with self._jwks_lock:
            now = self._clock.monotonic()
            age = float("inf") if self._jwks_fetched is None else now - self._jwks_fetched
            if self._jwks is not None and age <= _JWKS_MAX_AGE and not (
                refresh and age > _JWKS_MIN_REFRESH
            ):
                return self._jwks
            assert self.settings.jwks_uri
            # the time of the attempt, failed or not: an EHR that is down is asked again
            # after the same intervals, not on every request
            self._jwks_fetched = now
            try:
                resp = await self._http.get(self.settings.jwks_uri)
                resp.raise_for_status()
                self._jwks = KeySet.import_key_set(resp.json())
            except (httpx.HTTPError, ValueError, JoseError) as exc:
                if self._jwks is not None:
                    return self._jwks
                raise TokenServiceUnavailable(
                    f"JWKS {self.settings.jwks_uri} unavailable: {type(exc).__name__}"
                ) from exc
            return self._jwks

    async def _verify_jwt(self, token: str) -> dict[str, Any]:
        if token.count(".") != 2:
            raise InvalidToken("token is not a JWT (jwks validation is configured)")
        keys = await self._keyset(refresh=False)
        try:
            decoded = jwt.decode(token, keys, algorithms=JWT_ALGORITHMS)
        except (JoseError, ValueError):
            # an unknown kid may mean the EHR rotated its keys: refetch once (rate-limited)
            keys = await self._keyset(refresh=True)
            try:
                decoded = jwt.decode(token, keys, algorithms=JWT_ALGORITHMS)
            except (JoseError, ValueError) as exc:
                raise InvalidToken("token signature is invalid") from exc
        # the settings require an issuer in jwks mode (RFC 8725 3.8); aud is checked in
        # _info_from_claims, for introspection answers too
        assert self.settings.issuer is not None
        options: dict[str, Any] = {"exp": {"essential": True},
                                   "iss": {"essential": True, "value": self.settings.issuer}}
        registry = jwt.JWTClaimsRegistry(now=lambda: int(self._clock.time()), leeway=5,
                                         **options)
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(f"token rejected: {exc.error}") from exc
        return dict(decoded.claims)

    # --- common -------------------------------------------------------------------------------

    def _info_from_claims(self, claims: Mapping[str, Any]) -> TokenInfo:
        now = self._clock.time()
        exp = claims.get("exp")
        if exp is not None:
            try:
                exp = float(exp)
            except (TypeError, ValueError) as exc:
                raise InvalidToken("token exp is not a number") from exc
            if exp <= now:
                raise InvalidToken("token expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + 5:
            raise InvalidToken("token not yet valid")
        audience = self.settings.audience
        if audience is not None and audience not in _audiences(claims.get("aud")):
            raise InvalidToken("token was not issued for this gateway (aud)")
        scopes = _scopes(claims.get("scope"))
        client_id = claims.get("client_id") or claims.get("azp")
        client = str(client_id) if client_id is not None else None
        patient = claims.get("patient")
        if patient is not None and not isinstance(patient, str):
            raise InvalidToken("token patient claim is not a string")
        if patient:
            return TokenInfo(kind="smart", scopes=scopes, patient=patient, client_id=client,
                             expires_at=exp)
        kind: TokenKind = "system" if client in self.settings.system_clients else "smart"
        return TokenInfo(kind=kind, scopes=scopes, patient=None, client_id=client,
                         expires_at=exp)
