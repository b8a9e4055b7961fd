"""The sandbox's authorization server, assembled from authlib's server-side grants.

* authorization code (RFC 6749 4.1) with PKCE S256 required (RFC 7636; SMART 2.2 "Authorization
  code": S256 only, plain refused), ``state`` required, ``aud`` = the FHIR base, EHR launch
  (``launch`` resolved to a patient) and standalone launch (``launch/patient``: patient picked
  on the consent page);
* refresh tokens (RFC 6749 6), rotated, revocable;
* client credentials (RFC 6749 4.4) authenticated by a client secret (RFC 6749 2.3.1) or by
  ``private_key_jwt`` (RFC 7523 2.2 / 3, SMART Backend Services): signature checked against the
  registered JWKS, RS384/ES384 only, aud = token endpoint, exp <= 5 minutes, jti not replayed;
* JWT access tokens (RFC 9068) carrying scope, patient, fhirUser, client_id, signed with the
  sandbox key published at ``jwks_uri``;
* an OpenID Connect id_token (RS256, same key) when ``openid`` is granted, with SMART's
  ``fhirUser`` claim when ``fhirUser`` is granted too (SMART 2.2 "Scopes for requesting
  identity data"; OpenID Connect Core 3.1.3.3 and 3.1.3.6);
* token introspection (RFC 7662) and token revocation (RFC 7009): revoking a refresh token
  revokes every token of its authorization (RFC 7009 2.1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidClientError,
    InvalidRequestError,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from authlib.oidc.core import OpenIDCode
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet, RSAKey
from starlette.responses import JSONResponse, RedirectResponse, Response

from .models import (
    AccessRecord,
    AuthorizationCode,
    RefreshRecord,
    SandboxClient,
    SandboxUser,
    Store,
    new_grant_id,
)

log = logging.getLogger(__name__)
ACCESS_TOKEN_ALG = "RS256"
#: SMART 2.2 "sso-openid-connect": "The EHR SHALL support Signing ID Tokens with RSA SHA-256"
ID_TOKEN_ALG = "RS256"
ID_TOKEN_LIFETIME = 3600
ASSERTION_ALGS = ["RS384", "ES384"]
MAX_ASSERTION_LIFETIME = 300  # SMART Backend Services: exp no more than five minutes ahead


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request built from an already-read Starlette request (query + form)."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str],
                 query: Mapping[str, str], form: Mapping[str, str]) -> None:
        # keep the framework's case-insensitive headers: authlib reads "Authorization"
        super().__init__(method, uri, headers=headers)
        self._query = dict(query)
        self._form = dict(form)
        self.payload = BasicOAuth2Payload({**self._query, **self._form})

    @property
    def args(self) -> dict[str, str]:
        return self._query

    @property
    def form(self) -> dict[str, str]:
        return self._form


class SmartServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, store: Store, *, issuer: str, fhir_url: str, token_url: str,
                 signing_key: RSAKey) -> None:
        super().__init__(scopes_supported=None)
        self.store = store
        self.issuer = issuer
        self.fhir_url = fhir_url
        self.token_url = token_url
        self.signing_key = signing_key
        #: earlier signing keys still published (a rotation's grace period), newest first
        self.retired_keys: list[RSAKey] = []

    def verification_keys(self) -> KeySet:
        """The keys published at ``jwks_uri``: the signing key and the retired ones."""
        return KeySet([self.signing_key, *self.retired_keys])

    def rotate_signing_key(self, *, keep_old: bool = True) -> RSAKey:
        """Sign new tokens with a fresh key (new kid); the old key stays published (so
        tokens it signed keep verifying) unless ``keep_old`` is False."""
        old = self.signing_key
        self.signing_key = RSAKey.generate_key(2048, private=True, auto_kid=True)
        self.retired_keys = [old, *self.retired_keys] if keep_old else []
        return self.signing_key

    def query_client(self, client_id: str) -> SandboxClient | None:
        return self.store.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        claims = jwt.decode(token["access_token"], self.signing_key,
                            algorithms=[ACCESS_TOKEN_ALG]).claims
        user: SandboxUser | None = request.user
        # the authorization these tokens belong to: the code's, or the refresh token's
        # (a refresh continues its grant), or a new one (client credentials)
        source = request.refresh_token or request.authorization_code
        grant_id = getattr(source, "grant_id", None) or new_grant_id()
        with self.store.lock:
            self.store.access[claims["jti"]] = AccessRecord(
                jti=claims["jti"], client_id=claims["client_id"], scope=claims["scope"],
                exp=claims["exp"], iat=claims["iat"], sub=claims["sub"],
                patient=claims.get("patient"), fhir_user=claims.get("fhirUser"),
                grant_id=grant_id,
            )
            if token.get("refresh_token"):
                self.store.refresh[token["refresh_token"]] = RefreshRecord(
                    token=token["refresh_token"], client_id=request.client.client_id,
                    scope=token.get("scope", ""), user=user or SandboxUser(),
                    grant_id=grant_id,
                )

    def revoke_grant(self, grant_id: str) -> int:
        """Revoke every refresh and access token of one authorization (RFC 7009 2.1: "the
        authorization server SHOULD also invalidate all access tokens based on the same
        authorization grant"); the number of tokens newly revoked."""
        with self.store.lock:
            live: list[AccessRecord | RefreshRecord] = [
                *(r for r in self.store.refresh.values() if r.grant_id == grant_id),
                *(a for a in self.store.access.values() if a.grant_id == grant_id)]
            live = [r for r in live if not r.revoked]
            for record in live:
                record.revoked = True
        return len(live)

    def authenticate_client(self, request: OAuth2Request, methods: list[str],
                            endpoint: str = "token") -> Any:
        if self.store.switches.fail_client_auth:
            raise InvalidClientError(description="client authentication disabled (simulated)")
        return super().authenticate_client(request, methods, endpoint)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        # the routes read the body (async) and hand over a ready FormRequest
        if not isinstance(request, OAuth2Request):
            raise TypeError("the sandbox routes must pass a FormRequest")
        return request

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        hdrs = dict(headers or [])
        location = hdrs.pop("Location", None)
        if location is not None:
            return RedirectResponse(location, status_code=302, headers=hdrs)
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=hdrs)
        return Response(body or "", status_code=status, headers=hdrs)


# --- client authentication --------------------------------------------------------------


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """``private_key_jwt`` as SMART Backend Services profiles RFC 7523."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: SmartServer) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def get_audiences(self) -> list[str]:
        return [self.server.token_url]

    def resolve_client_public_key(self, client: SandboxClient) -> KeySet:
        return KeySet.import_key_set(client.jwks or {"keys": []})  # type: ignore[arg-type]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        headers, _ = self.extract_assertion(assertion)
        if headers.get("alg") not in ASSERTION_ALGS:
            raise InvalidClientError(
                description=f"assertion alg {headers.get('alg')!r} is not RS384 or ES384")
        if not headers.get("kid"):
            raise InvalidClientError(description="assertion header has no kid")
        if isinstance(resolve_key, KeySet) and not any(
                k.kid == headers["kid"] for k in resolve_key.keys):
            raise InvalidClientError(
                description=f"no registered key has kid {headers['kid']!r}")
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except BadSignatureError as exc:
            raise InvalidClientError(
                description="signature does not match the registered key") from exc
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description=f"assertion rejected: {exc}") from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: Any) -> None:
        super().verify_claims(claims)
        if float(claims["exp"]) - time.time() > MAX_ASSERTION_LIFETIME + self.leeway:
            raise InvalidClientError(description="assertion exp is more than 5 minutes ahead")

    def validate_jti(self, claims: Any, jti: str) -> bool:
        return self.server.store.use_assertion_jti(str(claims["sub"]), jti,
                                                   float(claims["exp"]))


# --- grants -----------------------------------------------------------------------------


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE is required of every client and only S256 is accepted (SMART 2.2)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge' (PKCE is required)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        super().validate_code_verifier(grant, result)


class SmartLaunchChecks:
    """SMART 2.2 authorization request checks beyond RFC 6749: state, aud and launch."""

    def __init__(self, server: SmartServer) -> None:
        self.server = server

    def __call__(self, grant: Any) -> None:
        grant.register_hook("after_validate_authorization_request_payload", self.validate)

    def validate(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("state"):
            raise InvalidRequestError("Missing 'state'")
        aud = (data.get("aud") or "").rstrip("/")
        if aud != self.server.fhir_url:
            raise InvalidRequestError(f"aud {aud or '(missing)'!r} is not this FHIR server")
        scopes = (grant.request.scope or "").split()
        if "launch" in scopes:
            launch = data.get("launch")
            if not launch or launch not in self.server.store.launches:
                raise InvalidRequestError("unknown or missing 'launch'")


def _with_context(token: dict[str, Any], user: SandboxUser) -> dict[str, Any]:
    """Launch context in the token response (SMART 2.2 "Launch context arrives with your
    access_token"); a refresh token only with offline_access/online_access."""
    scopes = str(token.get("scope", "")).split()
    if not {"offline_access", "online_access"} & set(scopes):
        token.pop("refresh_token", None)
    token.update(_context_of(user))
    return token


def _context_of(user: SandboxUser) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if user.patient:
        extra["patient"] = user.patient
        extra["need_patient_banner"] = True
    if user.fhir_context:  # SMART App Launch 2.2 "fhirContext" (array of Reference-likes)
        extra["fhirContext"] = [{"reference": ref} for ref in user.fhir_context]
    return extra


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post",
                                   "private_key_jwt", "none"]

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        user: SandboxUser = request.user
        launch = data.get("launch")
        if launch:
            user = SandboxUser(user.user_id, user.fhir_user,
                               self.server.store.launches.get(launch, user.patient),
                               self.server.store.launch_context.get(launch, ()))
        with self.server.store.lock:
            if data.get("nonce"):
                self.server.store.nonces.add((request.client.client_id, data["nonce"]))
            self.server.store.codes[code] = AuthorizationCode(
                code=code, client_id=request.client.client_id,
                redirect_uri=request.payload.redirect_uri, scope=request.scope or "",
                user=user, code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                nonce=data.get("nonce"),
            )

    def query_authorization_code(self, code: str, client: SandboxClient
                                 ) -> AuthorizationCode | None:
        store: Store = self.server.store
        item = store.codes.get(code)
        if item and item.client_id == client.client_id and item.expires_at > time.time():
            return item
        return None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        with self.server.store.lock:
            self.server.store.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: AuthorizationCode) -> SandboxUser:
        return authorization_code.user

    def generate_token(self, user: Any = None, scope: Any = None, **kwargs: Any) -> Any:
        token = super().generate_token(user=user, scope=scope, **kwargs)
        return _with_context(token, user)


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post",
                                   "private_key_jwt", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshRecord | None:
        item = self.server.store.refresh.get(refresh_token)
        return item if item and not item.revoked else None

    def authenticate_user(self, refresh_token: RefreshRecord) -> SandboxUser:
        return refresh_token.user

    def revoke_old_credential(self, refresh_token: RefreshRecord) -> None:
        refresh_token.revoked = True

    def generate_token(self, user: Any = None, scope: Any = None, **kwargs: Any) -> Any:
        token = super().generate_token(user=user, scope=scope, **kwargs)
        return _with_context(token, user)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post",
                                   "private_key_jwt"]


class SmartOpenIDCode(OpenIDCode):  # type: ignore[misc]
    """The id_token of the authorization code flow (OpenID Connect Core 3.1.3.3 / 3.1.3.6):
    RS256 with the sandbox key (its kid in the header), iss = the sandbox issuer, aud = the
    client_id, sub, nonce when the request had one, auth_time, at_hash, exp/iat, and SMART's
    ``fhirUser`` when ``fhirUser`` was granted.  A nonce seen before for the same client
    is refused (OpenID Connect Core 15.5.2)."""

    def __init__(self, server: SmartServer) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        # nonces are recorded when a code is issued (the consent page validates the same
        # request twice: once to show it, once when it is approved)
        return (request.payload.client_id, nonce) in self.server.store.nonces

    def resolve_client_private_key(self, client: SandboxClient) -> RSAKey:
        return self.server.signing_key

    def get_client_algorithm(self, client: SandboxClient) -> str:
        return ID_TOKEN_ALG

    def get_encode_header(self, client: SandboxClient) -> dict[str, Any]:
        # the kid tells clients which JWKS key verifies it (OpenID Connect Core 10.1)
        return {"alg": ID_TOKEN_ALG, "kid": self.server.signing_key.kid, "typ": "JWT"}

    def get_client_claims(self, client: SandboxClient) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.server.issuer, "aud": client.get_client_id(), "iat": now,
                "exp": now + ID_TOKEN_LIFETIME}

    def generate_user_info(self, user: SandboxUser, scope: str) -> dict[str, Any]:
        info: dict[str, Any] = {"sub": user.user_id}
        if "fhirUser" in scope.split():  # SMART 2.2: fhirUser claim with the fhirUser scope
            info["fhirUser"] = user.fhir_user
        return info


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """RFC 7009: the client authenticates as at the token endpoint (public clients by
    client_id); a token it was not issued is refused (2.1); an unknown, expired or already
    revoked token gets 200 all the same (2.2).  Revoking a refresh token revokes every token
    of its authorization; revoking an access token revokes that token only."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic", "client_secret_post", "private_key_jwt", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None
                    ) -> AccessRecord | RefreshRecord | None:
        server: SmartServer = self.server
        # the hint only orders the search (RFC 7009 2.1: "MUST extend its search")
        access = verify_access_token(server, token_string, check_active=False)
        refresh = server.store.refresh.get(token_string)
        found = (refresh, access) if token_type_hint == "refresh_token" else (access, refresh)
        return next((r for r in found if r is not None), None)

    def revoke_token(self, token: AccessRecord | RefreshRecord, request: OAuth2Request
                     ) -> None:
        server: SmartServer = self.server
        if isinstance(token, RefreshRecord):
            server.revoke_grant(token.grant_id)
        else:
            with server.store.lock:
                token.revoked = True


# --- access tokens and introspection ---------------------------------------------------


class AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    def __init__(self, server: SmartServer) -> None:
        super().__init__(issuer=server.issuer, alg=ACCESS_TOKEN_ALG,
                         refresh_token_generator=self._refresh_token,
                         expires_generator=self._expires_in)
        self.server = server

    @staticmethod
    def _refresh_token(client: SandboxClient, grant_type: str, user: Any, scope: str) -> str:
        return str(generate_token(48))

    def _expires_in(self, client: SandboxClient, grant_type: str) -> int:
        return int(self.server.store.switches.token_lifetime)

    def get_jwks(self) -> KeySet:
        # a key *set*, so joserfc writes the key's kid into the JWS header (RFC 7515 4.1.4;
        # OpenID Connect Core 10.1 requires it once a JWKS holds several keys)
        return KeySet([self.server.signing_key])

    def get_audiences(self, client: SandboxClient, user: Any, scope: str) -> str:
        return self.server.fhir_url  # the resource server (RFC 9068 3)

    def get_extra_claims(self, client: SandboxClient, grant_type: str, user: Any,
                         scope: str) -> dict[str, Any]:
        claims: dict[str, Any] = {}
        if isinstance(user, SandboxUser):
            if user.patient:
                claims["patient"] = user.patient
            claims["fhirUser"] = user.fhir_user
        return claims


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """RFC 7662: active, scope, client_id, exp, plus SMART's patient and fhirUser."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [
        "client_secret_basic", "client_secret_post", "private_key_jwt"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        server: SmartServer = self.server
        record = verify_access_token(server, token_string, check_active=False)
        if record is None:
            refresh = server.store.refresh.get(token_string)
            return _Found(refresh) if refresh else None
        return _Found(record)

    def check_permission(self, token: Any, client: SandboxClient, request: Any) -> bool:
        return True  # any registered confidential client (e.g. a resource server) may ask

    def introspect_token(self, token: Any) -> dict[str, Any]:
        if isinstance(token.record, RefreshRecord):
            r = token.record
            if r.revoked:  # RFC 7662 2.2: nothing more about an inactive token
                return {"active": False}
            return {"active": True, "client_id": r.client_id, "scope": r.scope,
                    "token_type": "refresh_token"}
        a: AccessRecord = token.record
        server: SmartServer = self.server
        if a.revoked or a.exp <= time.time():
            return {"active": False}
        out: dict[str, Any] = {
            "active": True, "scope": a.scope, "client_id": a.client_id, "exp": a.exp,
            "iat": a.iat, "sub": a.sub, "iss": server.issuer, "aud": server.fhir_url,
            "token_type": "Bearer",
        }
        if a.patient:
            out["patient"] = a.patient
        if a.fhir_user:
            out["fhirUser"] = a.fhir_user
        return out


def bearer_introspection(server: SmartServer, authorization: str, token: str
                         ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """RFC 7662 with the resource server authenticated by a bearer token (SMART App Launch
    2.2, Token Introspection: its example request carries ``Authorization: Bearer``): the
    caller presents an active access token this sandbox issued without patient context
    (a backend token, e.g. client_credentials); anything else is 401 ``invalid_token``
    (RFC 6750 3.1).  Answers (status, body, headers)."""
    scheme, _, value = authorization.partition(" ")
    caller = verify_access_token(server, value.strip()) if scheme.lower() == "bearer" \
        else None
    if caller is None or caller.patient:
        return (401, {"error": "invalid_token",
                      "error_description": "introspection needs the resource server's "
                                           "bearer token"},
                {"WWW-Authenticate": 'Bearer error="invalid_token"', "Cache-Control": "no-store"})
    if not token:
        return 400, {"error": "invalid_request"}, {"Cache-Control": "no-store"}
    endpoint = Introspection(server)
    found = endpoint.query_token(token, None)
    body = endpoint.introspect_token(found) if found is not None else {"active": False}
    return 200, body, {"Cache-Control": "no-store"}


class _Found:
    """A token record as authlib's introspection endpoint expects it; activity is decided in
    :meth:`Introspection.introspect_token`."""

    def __init__(self, record: AccessRecord | RefreshRecord) -> None:
        self.record = record

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return False


def verify_access_token(server: SmartServer, token: str, *, check_active: bool = True
                        ) -> AccessRecord | None:
    """The record of a token this sandbox issued, or None (bad signature, unknown, or -- with
    ``check_active`` -- expired or revoked)."""
    try:
        claims = jwt.decode(token, server.verification_keys(),
                            algorithms=[ACCESS_TOKEN_ALG]).claims
    except (JoseError, ValueError):
        return None
    if claims.get("iss") != server.issuer or claims.get("aud") != server.fhir_url:
        return None
    record = server.store.access.get(str(claims.get("jti")))
    if record is None:
        return None
    if check_active and (record.revoked or record.exp <= time.time()):
        return None
    return record


def build_server(store: Store, *, issuer: str, fhir_url: str, token_url: str,
                 signing_key: RSAKey) -> SmartServer:
    server = SmartServer(store, issuer=issuer, fhir_url=fhir_url, token_url=token_url,
                         signing_key=signing_key)
    server.register_client_auth_method(PrivateKeyJwt.CLIENT_AUTH_METHOD, PrivateKeyJwt(server))
    server.register_token_generator("default", AccessTokenGenerator(server))
    server.register_grant(AuthorizationCodeGrant, [S256Only(required=True),
                                                   SmartLaunchChecks(server),
                                                   SmartOpenIDCode(server)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Introspection)
    server.register_endpoint(Revocation)
    return server
