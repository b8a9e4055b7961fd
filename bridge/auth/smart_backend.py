"""SMART Backend Services client (``private_key_jwt``): the sync authenticating to the EHR.

The flow (HL7 SMART App Launch 2.2, "Backend Services"):

1. discover the token endpoint at ``{fhir}/.well-known/smart-configuration`` (SMART 2.2
   "Conformance": ``token_endpoint``, ``token_endpoint_auth_methods_supported``,
   ``token_endpoint_auth_signing_alg_values_supported``);
2. sign a fresh authentication JWT (RFC 7523 2.2 / 3): header alg RS384|ES384, kid,
   typ=JWT; claims iss = sub = client_id, aud = token endpoint, exp no more than five
   minutes ahead, a unique jti;
3. POST ``grant_type=client_credentials``, ``scope``, ``client_assertion_type``,
   ``client_assertion`` (RFC 6749 4.4 with RFC 7521 4.2 client authentication).

There is no refresh token: when the access token nears expiry a new assertion is signed
and the grant repeated.  Assertions and tokens are never logged.
"""

from __future__ import annotations

import logging
import secrets

import httpx
from authlib.oauth2.rfc7523 import private_key_jwt_sign

from bridge.auth.keys import SigningKey, load_signing_key
from bridge.auth.smart_discovery import DiscoveryProblem, discover
from bridge.auth.tokens import AccessToken, TokenFetcher, describe_oauth_error, parse_token
from bridge.clock import SYSTEM_CLOCK, Clock
from bridge.config import AuthSettings
from bridge.errors import AuthError

log = logging.getLogger(__name__)

#: least privilege for the sync (SMART scopes v2): write studies and endpoints, read the
#: patients and orders they reference.  Add ``system/Patient.c`` when patient policy is
#: ``create`` (set ``auth.scope``).
DEFAULT_BACKEND_SCOPE = (
    "system/ImagingStudy.cu system/Endpoint.cu system/Patient.rs system/ServiceRequest.rs"
)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: SMART Backend Services: exp "no more than five minutes in the future"
ASSERTION_LIFETIME = 300


def sign_client_assertion(
    key: SigningKey, *, client_id: str, token_endpoint: str, now: int | None = None
) -> str:
    """A new authentication JWT for one token request (RFC 7523 3), fresh jti each call."""
    issued = int(SYSTEM_CLOCK.time()) if now is None else now
    assertion = private_key_jwt_sign(
        key.key,
        client_id=client_id,
        token_endpoint=token_endpoint,
        alg=key.alg,
        claims={"jti": secrets.token_urlsafe(32)},
        header={"kid": key.kid, "typ": "JWT"},
        issued_at=issued,
        expires_at=issued + ASSERTION_LIFETIME,
    )
    return str(assertion)


#: how a failed discovery is told to an administrator
_DISCOVERY_FAILED = {
    "unreachable": "SMART discovery at {url} failed: {detail}",
    "status": "SMART discovery at {url} answered HTTP {detail}",
    "not-json": "SMART discovery at {url} did not return JSON",
    "no-token-endpoint": "SMART discovery at {url} names no token_endpoint",
}


async def discover_token_endpoint(fhir_base: str, alg: str, client: httpx.AsyncClient) -> str:
    """The token endpoint named by ``{fhir}/.well-known/smart-configuration`` (SMART 2.2
    "Conformance"), once the server is seen to accept ``private_key_jwt`` with ``alg``."""
    found = await discover(client, fhir_base)
    if isinstance(found, DiscoveryProblem):
        raise AuthError(_DISCOVERY_FAILED[found.reason].format(url=found.url,
                                                               detail=found.detail)
                        ) from found.cause
    methods = found.token_endpoint_auth_methods
    if methods is not None and "private_key_jwt" not in methods:
        raise AuthError(
            f"the EHR at {fhir_base} does not offer private_key_jwt client authentication "
            f"(token_endpoint_auth_methods_supported: {', '.join(methods)})"
        )
    algs = found.token_endpoint_auth_signing_algs
    if algs is not None and alg not in algs:
        raise AuthError(
            f"the EHR at {fhir_base} does not accept {alg} assertions "
            f"(token_endpoint_auth_signing_alg_values_supported: {', '.join(algs)})"
        )
    return found.token_endpoint


class SmartBackendFetcher:
    """Obtains access tokens with a signed client assertion; one instance per remote."""

    def __init__(
        self, settings: AuthSettings, *, fhir_base: str | None, timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None, clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if settings.client_id is None or settings.private_key_file is None:
            raise AuthError("smart_backend auth needs client_id and private_key_file")
        if settings.token_url is None and fhir_base is None:
            raise AuthError("smart_backend auth needs token_url or a FHIR base to discover it")
        self.client_id = settings.client_id
        self.scope = settings.scope or DEFAULT_BACKEND_SCOPE
        # loaded (and its file mode checked) now, so a bad key stops start-up
        self.key = load_signing_key(settings.private_key_file, key_id=settings.key_id)
        self._fhir_base = fhir_base
        self._token_endpoint = settings.token_url
        self._timeout = timeout
        self._transport = transport
        self._clock = clock

    @property
    def remote(self) -> str:
        return self._fhir_base or self._token_endpoint or "?"

    async def _endpoint(self, client: httpx.AsyncClient) -> str:
        if self._token_endpoint is None:
            assert self._fhir_base is not None
            self._token_endpoint = await discover_token_endpoint(self._fhir_base, self.key.alg,
                                                                 client)
        return self._token_endpoint

    async def __call__(self) -> AccessToken:
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client:
            endpoint = await self._endpoint(client)
            data = {
                "grant_type": "client_credentials",
                "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": sign_client_assertion(
                    self.key, client_id=self.client_id, token_endpoint=endpoint,
                    now=int(self._clock.time()),
                ),
            }
            started = self._clock.monotonic()
            try:
                resp = await client.post(endpoint, data=data,
                                         headers={"Accept": "application/json"})
            except httpx.HTTPError as exc:
                raise AuthError(
                    f"token endpoint {endpoint} unreachable: {type(exc).__name__}"
                ) from exc
        if resp.status_code != 200:
            raise AuthError(f"token request to {endpoint} refused: {describe_oauth_error(resp)}")
        token = parse_token(resp, endpoint, started=started)
        log.debug("access token obtained", extra={"token_endpoint": endpoint,
                                                  "client_id": self.client_id,
                                                  "granted_scope": token.scope})
        return token


def smart_backend_fetcher(
    settings: AuthSettings, *, fhir_base: str | None, timeout: float = 30.0,
    clock: Clock = SYSTEM_CLOCK,
) -> TokenFetcher:
    return SmartBackendFetcher(settings, fhir_base=fhir_base, timeout=timeout, clock=clock)
