"""Viewer tokens: short-lived, single-patient bearer tokens the SMART app mints for OHIF.

Format (a JWT, RFC 7519, signed HS256 with ``gateway.viewer_token_secret``)::

    header  {"alg": "HS256", "typ": "bridge-viewer+jwt"}
    claims  {"iss": "bridge", "aud": <gateway public base>, "sub": <patient>,
             "patient": <patient>, "scope": "patient/ImagingStudy.rs",
             "iat": ..., "exp": iat + <= 300 s, "jti": <128-bit random>}

``sid`` (optional) names the SMART app session that minted the token (the session row's
key, never the cookie): the gateway refuses the token once that session has ended, so a
sign-out also ends the viewer's access (within the validation cache's ``cache_ttl``).

``patient`` is either a FHIR Patient reference (``Patient/123``, or the bare id ``123``
as in the SMART token response) or a patient identifier ``system|value``.  The explicit
``typ`` (RFC 8725 3.11) is how the gateway tells viewer tokens from the EHR's tokens, so
an EHR JWT can never be mistaken for one and vice versa.

joserfc is used rather than ``authlib.jose``: Authlib deprecated its ``jose`` module in
favour of joserfc (same authors), which the rest of the bridge already uses.

Public API::

    tokens = ViewerTokens(secret=..., audience="https://bridge.example.org/dicom-web")
    token = tokens.mint(patient="Patient/123")
    claims = tokens.verify(token)       # ViewerClaims, or raises InvalidToken
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.gateway.errors import InvalidToken

ISSUER = "bridge"
TOKEN_TYPE = "bridge-viewer+jwt"
DEFAULT_SCOPE = "patient/ImagingStudy.rs"
MAX_LIFETIME = 300.0  # five minutes: viewer tokens are re-minted, never refreshed
_ALG = "HS256"


@dataclass(frozen=True, slots=True)
class ViewerClaims:
    """The verified claims of a viewer token."""

    patient: str
    scope: str
    jti: str
    issued_at: int
    expires_at: int
    audience: str
    #: the SMART app session that minted it (``sid``), None for tokens minted elsewhere
    session: str | None = None

    def __repr__(self) -> str:  # the patient is personal data: keep it out of logs
        return f"ViewerClaims(jti={self.jti!r}, expires_at={self.expires_at})"


class ViewerTokens:
    """Mints and verifies viewer tokens for one gateway (its public base is the audience);
    ``iat``/``exp`` are dated and checked by ``clock``'s wall time (RFC 7519 4.1.4, 4.1.6)."""

    def __init__(
        self, *, secret: str | bytes, audience: str, lifetime: float = MAX_LIFETIME,
        leeway: int = 5, clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        raw = secret.encode() if isinstance(secret, str) else secret
        if len(raw) < 32:
            raise ValueError("the viewer token secret must be at least 32 bytes")
        if not 0 < lifetime <= MAX_LIFETIME:
            raise ValueError(f"viewer token lifetime must be in (0, {MAX_LIFETIME:.0f}] s")
        self._key = OctKey.import_key(raw)
        self.audience = audience
        self.lifetime = lifetime
        self._leeway = leeway
        self._clock = clock

    def mint(
        self, *, patient: str, scope: str = DEFAULT_SCOPE, lifetime: float | None = None,
        session: str | None = None,
    ) -> str:
        """A signed viewer token for ``patient`` valid ``lifetime`` (<= configured) seconds."""
        if not patient or patient != patient.strip():
            raise ValueError("patient must be a non-empty reference or system|value")
        life = self.lifetime if lifetime is None else min(lifetime, self.lifetime)
        now = int(self._clock.time())
        claims = {
            "iss": ISSUER,
            "aud": self.audience,
            "sub": patient,
            "patient": patient,
            "scope": scope,
            "iat": now,
            "exp": now + max(1, int(life)),
            "jti": secrets.token_urlsafe(16),
        }
        if session is not None:
            claims["sid"] = session
        return jwt.encode({"alg": _ALG, "typ": TOKEN_TYPE}, claims, self._key, algorithms=[_ALG])

    def verify(self, token: str) -> ViewerClaims:
        """Check signature, ``typ``, ``iss``, ``aud``, ``exp``; raise :class:`InvalidToken`."""
        try:
            decoded = jwt.decode(token, self._key, algorithms=[_ALG])
        except (JoseError, ValueError) as exc:
            raise InvalidToken("viewer token signature or format is invalid") from exc
        if decoded.header.get("typ") != TOKEN_TYPE:
            raise InvalidToken("not a viewer token (typ)")
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock.time()),
            leeway=self._leeway,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            jti={"essential": True},
            patient={"essential": True},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise InvalidToken(f"viewer token rejected: {exc.error}") from exc
        claims = decoded.claims
        iat = int(claims.get("iat", 0))
        exp = int(claims["exp"])
        if exp - iat > MAX_LIFETIME + self._leeway:
            raise InvalidToken("viewer token lifetime exceeds five minutes")
        patient = claims["patient"]
        if not isinstance(patient, str) or not patient or claims.get("sub") != patient:
            raise InvalidToken("viewer token patient claim is invalid")
        sid = claims.get("sid")
        if sid is not None and (not isinstance(sid, str) or not sid):
            raise InvalidToken("viewer token sid claim is invalid")
        return ViewerClaims(
            patient=patient, scope=str(claims.get("scope", "")), jti=str(claims["jti"]),
            issued_at=iat, expires_at=exp, audience=self.audience, session=sid,
        )
