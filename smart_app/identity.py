"""Who signed in: the OpenID Connect id_token of the launch (SMART App Launch 2.2 "Scopes for
requesting identity data").

When the app asks for ``openid fhirUser`` the EHR returns an ``id_token`` beside the access
token.  It is validated as OpenID Connect Core 1.0, 3.1.3.7 requires, with the EHR's keys
found as SMART 2.2 "Steps for using an ID token" describe:

1. the expected issuer is the ``issuer`` of the EHR's smart-configuration (required there
   with ``sso-openid-connect``), never the token's own ``iss``: a forged token cannot point
   the app at the forger's keys;
2. ``{issuer}/.well-known/openid-configuration`` must name that same issuer (OpenID Connect
   Discovery 1.0, 4.3) and gives ``jwks_uri`` and the signing algorithms;
3. the signature must verify against that JWKS with an asymmetric algorithm the EHR
   announces (RS256 by default: SMART requires it; never ``none`` or HMAC);
4. ``iss`` equals the issuer, ``aud`` is this client alone (``azp`` too when present),
   ``exp`` is in the future, ``iat`` not in the future, ``nonce`` equals the one sent in
   this browser's authorization request, ``at_hash`` (when present) matches the access
   token (3.1.3.8), ``sub`` is present;
5. ``fhirUser`` -- kept in the server-side session, never logged -- is a Patient,
   Practitioner, RelatedPerson or Person reference, relative or absolute.

Configurations and key sets are cached per issuer for five minutes; a token signed with an
unknown ``kid`` makes the app fetch the JWKS again (at most every 30 s: key rotation).  Those
ages are counted on the injected clock's monotonic seconds, ``exp``/``iat`` on its wall time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from bridge.clock import SYSTEM_CLOCK, Clock
from smart_app.launch import LaunchError, same_origin_or_https

#: asymmetric algorithms accepted on an id_token; SMART 2.2 requires RS256 of the EHR
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384")
#: SMART 2.2: "a resource of type Patient, Practitioner, RelatedPerson, or Person"
FHIR_USER_TYPES = frozenset({"Patient", "Practitioner", "RelatedPerson", "Person"})
LEEWAY = 60  # seconds of clock skew tolerated on exp and iat
_CACHE_AGE = 300.0
_MIN_REFETCH = 30.0
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


@dataclass(frozen=True, slots=True)
class Identity:
    """The validated user; ``fhir_user`` is None when the EHR granted no ``fhirUser``."""

    sub: str
    fhir_user: str | None

    def __repr__(self) -> str:  # never the user in logs
        return f"Identity(fhir_user={'set' if self.fhir_user else 'none'})"


def _refused(detail: str) -> LaunchError:
    return LaunchError("Sign-in failed", f"the EHR's identity token (id_token) was refused: "
                       f"{detail}", status=401)


def _unavailable(detail: str) -> LaunchError:
    return LaunchError("Sign-in failed", f"the EHR's OpenID Connect keys could not be "
                       f"read: {detail}", status=502)


@dataclass(slots=True)
class _Provider:
    algorithms: tuple[str, ...]
    jwks_uri: str
    keys: KeySet
    fetched: float


class OpenIdProviders:
    """The OpenID configuration and JWKS of each EHR issuer, cached (see module doc)."""

    def __init__(self, http: httpx.AsyncClient, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._http = http
        self._clock = clock
        self._cache: dict[str, _Provider] = {}
        self._lock = asyncio.Lock()

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            resp = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise _unavailable(f"{url} is not reachable ({type(exc).__name__})") from exc
        if resp.status_code != 200:
            raise _unavailable(f"{url} answered HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise _unavailable(f"{url} is not JSON") from exc
        if not isinstance(body, dict):
            raise _unavailable(f"{url} is not a JSON object")
        return body

    async def _fetch_keys(self, jwks_uri: str) -> KeySet:
        try:
            return KeySet.import_key_set(await self._get_json(jwks_uri))  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise _unavailable("the JWKS holds no usable key") from exc

    async def provider(self, issuer: str, *, refetch_keys: bool = False) -> _Provider:
        async with self._lock:
            now = self._clock.monotonic()
            cached = self._cache.get(issuer)
            if cached is not None and now - cached.fetched <= _CACHE_AGE:
                if not refetch_keys or now - cached.fetched < _MIN_REFETCH:
                    return cached
                cached.keys = await self._fetch_keys(cached.jwks_uri)
                cached.fetched = now
                return cached
            # OpenID Connect Discovery 1.0, 4: a terminating "/" is removed before appending
            config = await self._get_json(
                f"{issuer.rstrip('/')}/.well-known/openid-configuration")
            if config.get("issuer") != issuer:  # OpenID Connect Discovery 1.0, 4.3
                raise _unavailable("the openid-configuration names another issuer")
            jwks_uri = config.get("jwks_uri")
            if not isinstance(jwks_uri, str) or not same_origin_or_https(jwks_uri, issuer):
                raise _unavailable("jwks_uri is missing, or neither https nor on the "
                                   "issuer's host")
            announced = config.get("id_token_signing_alg_values_supported")
            algs = tuple(a for a in ID_TOKEN_ALGORITHMS
                         if not isinstance(announced, list) or a in announced)
            if not algs:
                raise _unavailable("the EHR signs id_tokens with no algorithm this app "
                                   "accepts")
            provider = _Provider(algs, jwks_uri, await self._fetch_keys(jwks_uri), now)
            self._cache[issuer] = provider
            return provider

    async def verify(self, id_token: str, *, issuer: str, client_id: str, nonce: str,
                     access_token: str | None) -> Identity:
        """The identity in ``id_token``, or :class:`LaunchError` (401 when the token is
        refused, 502 when the EHR's keys cannot be read)."""
        if not isinstance(id_token, str) or id_token.count(".") != 2:
            raise _refused("it is not a signed JWT")
        provider = await self.provider(issuer)
        try:
            decoded = jwt.decode(id_token, provider.keys, algorithms=list(provider.algorithms))
        except InvalidKeyIdError:
            provider = await self.provider(issuer, refetch_keys=True)  # the EHR rotated keys
            try:
                decoded = jwt.decode(id_token, provider.keys,
                                     algorithms=list(provider.algorithms))
            except (JoseError, ValueError) as exc:
                raise _refused("its signature does not verify against the EHR's keys"
                               ) from exc
        except (JoseError, ValueError) as exc:
            raise _refused("its signature does not verify against the EHR's keys") from exc
        claims = decoded.claims
        check_claims(claims, issuer=issuer, client_id=client_id, nonce=nonce,
                     now=self._clock.time())
        alg = str(decoded.header.get("alg", ""))
        if (access_token is not None and "at_hash" in claims
                and claims["at_hash"] != _half_hash(access_token, alg)):
            raise _refused("at_hash does not match the access token")
        return Identity(sub=str(claims["sub"]), fhir_user=fhir_user_of(claims))


def check_claims(claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str,
                 now: float | None = None) -> None:
    """OpenID Connect Core 3.1.3.7 items 2-5 and 9-11 (the signature is checked before)."""
    now = SYSTEM_CLOCK.time() if now is None else now
    if claims.get("iss") != issuer:
        raise _refused("it was issued by another issuer (iss)")
    aud = claims.get("aud")
    audiences = aud if isinstance(aud, list) else [aud]
    if audiences != [client_id]:
        raise _refused("it was issued for another client (aud)")
    if "azp" in claims and claims["azp"] != client_id:
        raise _refused("it was issued for another client (azp)")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or exp + LEEWAY <= now:
        raise _refused("it has expired (exp)")
    if not isinstance(iat, int | float) or iat - LEEWAY > now:
        raise _refused("it is issued in the future (iat)")
    got = claims.get("nonce")
    if not isinstance(got, str) or not _same(got, nonce):
        raise _refused("its nonce is not the one this browser sent (possible replay)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise _refused("it names no subject (sub)")


def fhir_user_of(claims: dict[str, Any]) -> str | None:
    """SMART's ``fhirUser`` claim: a relative (``Practitioner/1``) or absolute URL of a
    Patient, Practitioner, RelatedPerson or Person; None when absent."""
    value = claims.get("fhirUser")
    if value is None:
        return None
    if not isinstance(value, str):
        raise _refused("fhirUser is not a string")
    path = urlsplit(value).path if "://" in value else value
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[-2] not in FHIR_USER_TYPES:
        raise _refused("fhirUser is not a Patient, Practitioner, RelatedPerson or Person")
    return value


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _half_hash(value: str, alg: str) -> str:
    """OpenID Connect Core 3.1.3.6 ``at_hash``: the left half of the hash the JWS algorithm
    uses, base64url without padding."""
    digest = _HASHES.get(alg[-3:], hashlib.sha256)(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")
