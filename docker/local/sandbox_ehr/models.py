"""In-memory records of the sandbox EHR: registered clients, users, codes, tokens, launches.

The authlib mixins (``ClientMixin``, ``AuthorizationCodeMixin``) are implemented here so the
authlib grants can use these records as they would an EHR's database rows.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oidc.core import AuthorizationCodeMixin

#: SMART scopes that are not resource permissions and are granted whenever requested
CONTEXT_SCOPES = {"launch", "launch/patient", "launch/encounter", "openid", "fhirUser",
                  "offline_access", "online_access"}
#: the user the sandbox simulates unless told otherwise (SandboxEhr(fhir_user=...))
DEFAULT_FHIR_USER = "Practitioner/sandbox-tester"
#: SMART 2.2 "Scopes for requesting identity data": fhirUser is one of these types
FHIR_USER_TYPES = ("Patient", "Practitioner", "RelatedPerson", "Person")


def new_grant_id() -> str:
    return secrets.token_hex(12)


def check_fhir_user(reference: str) -> str:
    """``reference`` if it is ``Type/id`` with a SMART fhirUser type, else ValueError."""
    kind, _, ident = reference.partition("/")
    if kind not in FHIR_USER_TYPES or not ident or "/" in ident:
        raise ValueError(f"fhirUser must be {'|'.join(FHIR_USER_TYPES)}/<id>: {reference!r}")
    return reference


@dataclass
class SandboxClient(ClientMixin):  # type: ignore[misc]
    """A registered client.  Its kind follows from its credentials (SMART 2.2 "Client types"):
    ``jwks`` -> confidential asymmetric (private_key_jwt), ``secret`` -> confidential
    symmetric (client_secret_basic/post), neither -> public (PKCE only)."""

    client_id: str
    redirect_uris: list[str] = field(default_factory=list)
    jwks: dict[str, Any] | None = None
    secret: str | None = None
    #: scopes this client may be granted; None allows any requested scope
    allowed_scopes: list[str] | None = None
    #: the app's launch URL for EHR launch (the sandbox opens it with iss and launch)
    launch_url: str | None = None
    name: str = ""

    @property
    def kind(self) -> str:
        if self.jwks:
            return "confidential-asymmetric"
        if self.secret:
            return "confidential-symmetric"
        return "public"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # SMART 2.2: redirect_uri is required in the request; no default is assumed
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        requested = (scope or "").split()
        if self.allowed_scopes is None:
            return " ".join(dict.fromkeys(requested))
        allowed = set(self.allowed_scopes) | CONTEXT_SCOPES
        return " ".join(s for s in dict.fromkeys(requested) if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # exact match (RFC 6749 3.1.2.3; SMART: "a registered redirect_uri")
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret is not None and secrets.compare_digest(self.secret, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.kind == "confidential-asymmetric":
            return method == "private_key_jwt"
        if self.kind == "confidential-symmetric":
            return method in ("client_secret_basic", "client_secret_post")
        return method == "none"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "client_credentials":
            return self.kind != "public"
        return grant_type in ("authorization_code", "refresh_token")


@dataclass(frozen=True)
class SandboxUser:
    """The person at the EHR (the tester), with the patient in context if any.  The id_token
    carries ``user_id`` as ``sub`` and ``fhir_user`` as ``fhirUser``."""

    user_id: str = "sandbox-tester"
    fhir_user: str = DEFAULT_FHIR_USER
    patient: str | None = None
    #: SMART 2.2 fhirContext of an EHR launch, e.g. ("ImagingStudy/123",)
    fhir_context: tuple[str, ...] = ()

    def get_user_id(self) -> str:
        return self.user_id


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: SandboxUser
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None = None
    auth_time: int = field(default_factory=lambda: int(time.time()))
    #: one id per authorization; every token issued from it (and from its refresh tokens)
    #: carries it, so revoking a refresh token can revoke them all (RFC 7009 2.1)
    grant_id: str = field(default_factory=new_grant_id)
    #: RFC 6749 4.1.2: codes must expire shortly; ten minutes at most
    expires_at: float = field(default_factory=lambda: time.time() + 600)

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_nonce(self) -> str | None:
        return self.nonce


@dataclass
class RefreshRecord:
    token: str
    client_id: str
    scope: str
    user: SandboxUser
    grant_id: str = field(default_factory=new_grant_id)
    revoked: bool = False

    # authlib's RefreshTokenGrant reads these
    def get_scope(self) -> str:
        return self.scope

    def check_client(self, client: SandboxClient) -> bool:
        return client.client_id == self.client_id

    def is_expired(self) -> bool:
        return False

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class AccessRecord:
    """What the sandbox remembers about an access token it issued (for introspection)."""

    jti: str
    client_id: str
    scope: str
    exp: int
    iat: int
    sub: str
    patient: str | None
    fhir_user: str | None
    grant_id: str = field(default_factory=new_grant_id)
    revoked: bool = False

    def check_client(self, client: SandboxClient) -> bool:
        return client.client_id == self.client_id


@dataclass
class Switches:
    """Error simulation for tests (all off by default)."""

    #: lifetime of new access tokens in seconds
    token_lifetime: int = 3600
    #: every client authentication at the token endpoint fails with invalid_client
    fail_client_auth: bool = False
    #: how a resource server authenticates at /introspect: ``client`` (client
    #: authentication as at the token endpoint) or ``bearer`` (an access token this sandbox
    #: issued without patient context, as in SMART App Launch 2.2's introspection example)
    introspection_auth: str = "client"
    #: the user the sandbox simulates from now on (fhirUser of the id_token): a
    #: Practitioner (the default, an EHR user) or e.g. a Patient (a patient portal)
    fhir_user: str = DEFAULT_FHIR_USER

    def user(self, *, patient: str | None = None) -> SandboxUser:
        """The simulated user; ``sub`` stays ``sandbox-tester`` for the default user."""
        user_id = "sandbox-tester" if self.fhir_user == DEFAULT_FHIR_USER else self.fhir_user
        return SandboxUser(user_id=user_id, fhir_user=self.fhir_user, patient=patient)


class Store:
    """All mutable state, behind one lock (the app may be called from several threads)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clients: dict[str, SandboxClient] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh: dict[str, RefreshRecord] = {}
        self.access: dict[str, AccessRecord] = {}
        #: (client_id, nonce) of every code issued: a nonce is used once (OIDC Core 15.5.2)
        self.nonces: set[tuple[str, str]] = set()
        #: assertion jti -> its exp, for replay detection (RFC 7523 3 item 7)
        self.assertion_jtis: dict[str, float] = {}
        #: opaque EHR launch id -> patient id (SMART 2.2 "EHR launch")
        self.launches: dict[str, str] = {}
        self.launch_context: dict[str, tuple[str, ...]] = {}
        self.switches = Switches()
        #: FHIR requests refused with 401 because the token was invalid/expired (for tests)
        self.refused_tokens = 0

    def use_assertion_jti(self, client_id: str, jti: str, exp: float) -> bool:
        """Record a jti; False if it was seen before (a replay)."""
        key = f"{client_id}:{jti}"
        now = time.time()
        with self.lock:
            for old in [k for k, e in self.assertion_jtis.items() if e < now - 300]:
                del self.assertion_jtis[old]
            if key in self.assertion_jtis:
                return False
            self.assertion_jtis[key] = exp
            return True

    def new_launch(self, patient: str, fhir_context: tuple[str, ...] = ()) -> str:
        launch = secrets.token_urlsafe(24)
        with self.lock:
            self.launches[launch] = patient
            if fhir_context:
                self.launch_context[launch] = fhir_context
        return launch
