"""The SMART App Launch 2.2 client: discovery, authorization request, token exchange, refresh,
revocation.

EHR launch: the EHR opens ``/smart/launch?iss=<fhir base>&launch=<opaque>``; standalone
launch: ``/smart/launch`` goes to the configured ``smart.standalone_iss`` and asks for
``launch/patient`` (the EHR shows its patient picker).  Either way (SMART 2.2 "App
Launch: Launch and Authorization"):

1. ``iss`` must be on ``smart.iss_allowlist`` (nothing else is ever contacted);
2. ``{iss}/.well-known/smart-configuration`` gives the endpoints (SMART 2.2 "Conformance");
3. redirect to ``authorization_endpoint`` with response_type=code, client_id, redirect_uri
   (``{base}/smart/callback``), launch, scope, state (256 random bits bound to the
   server-side session), aud = iss, code_challenge (PKCE S256, never plain);
4. ``/smart/callback`` checks state, POSTs grant_type=authorization_code with the
   code_verifier (confidential clients authenticate: Basic, or private_key_jwt);
5. the token response (access/refresh token, patient, encounter, fhirContext,
   need_patient_banner, smart_style_url) is kept server-side only.

With ``smart.request_identity`` and an EHR that offers ``sso-openid-connect``, the scopes
include ``openid fhirUser`` and the request a ``nonce``; :mod:`smart_app.identity` checks the
id_token.  Sign-out revokes the tokens at the EHR's ``revocation_endpoint`` (RFC 7009) when
the smart-configuration names one.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from bridge.auth import smart_discovery
from bridge.auth.keys import SigningKey, load_signing_key
from bridge.auth.smart_backend import ASSERTION_TYPE, sign_client_assertion
from bridge.auth.smart_discovery import DiscoveryProblem
from bridge.auth.tokens import (
    TokenProblem,
    describe_oauth_error,
    read_token_response,
    token_lifetime,
)
from bridge.config import ScopeForm, SmartSettings
from bridge.errors import Permanent

log = logging.getLogger(__name__)

BASE_SCOPES_V2 = ("launch", "openid", "fhirUser", "patient/Patient.r", "patient/ImagingStudy.rs")
BASE_SCOPES_V1 = ("launch", "openid", "fhirUser", "patient/Patient.read",
                  "patient/ImagingStudy.read")
#: SMART 2.2 "Scopes for requesting identity data"
IDENTITY_SCOPES = ("openid", "fhirUser")
#: renew the access token this long before it expires
REFRESH_MARGIN = 30.0


class LaunchError(Permanent):
    """A launch that cannot go on; shown to the user on the error page (no session kept),
    with ``http_status`` (the ``status`` given)."""

    kind = "launch"

    def __init__(self, title: str, detail: str, *, status: int = 400,
                 signed_in: bool = False, ehr_description: str | None = None) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail
        self.http_status: int = status
        #: the ``error_description`` the EHR sent (RFC 6749 4.1.2.1), shown as its words
        self.ehr_description = ehr_description
        #: the session goes on: the page links back to the history, not to the EHR
        self.signed_in = signed_in


#: the one answer for a study the session may not open, another patient's or one that
#: exists nowhere (IHE IID's rule here, issue 12 item 9: no existence oracle).  403, not
#: 404, for both: the session is known and is refused; "not found" would claim the app knew
#: the study does not exist, and the gateway and /IHEInvokeImageDisplay answer 403 too
STUDY_UNAVAILABLE = ("Study not available",
                     "this study is not among the patient's studies that the app may show")


#: RFC 6749 4.1.2.1: error_description is %x20-21 / %x23-5B / %x5D-7E; shown at most this long
_DESCRIPTION_MAX = 300


def error_description(params: dict[str, str]) -> str | None:
    """The authorization server's ``error_description``, reduced to the characters RFC 6749
    allows and cut to a readable length.  It arrives in a redirect anyone can forge, so it
    is shown as text (the page escapes it), attributed to the EHR, never as markup or a
    link, and never logged."""
    raw = params.get("error_description") or ""
    text = "".join(c for c in raw if " " <= c <= "~" and c not in '"\\').strip()
    if len(text) > _DESCRIPTION_MAX:
        text = text[:_DESCRIPTION_MAX].rstrip() + "\u2026"
    return text or None


def study_unavailable() -> LaunchError:
    return LaunchError(*STUDY_UNAVAILABLE, status=403, signed_in=True)


@dataclass(frozen=True, slots=True)
class LaunchConfiguration:
    """The parts of ``.well-known/smart-configuration`` the app uses, checked for a
    launch (:func:`discover`)."""

    authorization_endpoint: str
    token_endpoint: str
    capabilities: frozenset[str]
    code_challenge_methods: frozenset[str]
    #: the OpenID Connect issuer, when the EHR offers ``sso-openid-connect`` (SMART 2.2
    #: "Conformance": ``issuer`` is then required)
    openid_issuer: str | None = None
    #: RFC 7009 revocation endpoint (SMART 2.2 "Conformance": RECOMMENDED)
    revocation_endpoint: str | None = None


def requested_scopes(settings: SmartSettings, *, standalone: bool, identity: bool = True
                     ) -> str:
    """The scope parameter; ``identity`` adds ``openid fhirUser`` (when the EHR offers
    OpenID Connect and ``smart.request_identity`` is on)."""
    base = BASE_SCOPES_V1 if settings.scope_form is ScopeForm.V1 else BASE_SCOPES_V2
    scopes = [s for s in base if not (standalone and s == "launch")
              and (identity or s not in IDENTITY_SCOPES)]
    if standalone:
        scopes.insert(0, "launch/patient")
    scopes += [s for s in settings.extra_scopes if s not in scopes]
    return " ".join(scopes)


def check_iss(settings: SmartSettings, iss: str) -> str:
    """The allow-listed FHIR base for ``iss`` (exact match, trailing slash ignored)."""
    normal = iss.strip().rstrip("/")
    if normal not in settings.iss_allowlist:
        raise LaunchError("Launch refused",
                          "this app may not be launched from that EHR (iss is not allowed)",
                          status=403)
    return normal


def same_origin_or_https(url: str, iss: str) -> bool:
    """SMART 2.2 asks for TLS; plain http is accepted only on the EHR's own host (a
    sandbox on loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    return parts.scheme == "http" and parts.netloc == urlsplit(iss).netloc


async def discover(client: httpx.AsyncClient, iss: str) -> LaunchConfiguration:
    """The EHR's smart-configuration (:mod:`bridge.auth.smart_discovery`), checked for a
    launch: both endpoints, TLS, PKCE S256."""
    found = await smart_discovery.discover(client, iss)
    if isinstance(found, DiscoveryProblem):
        if found.reason == "unreachable":
            raise LaunchError("EHR not reachable", f"SMART discovery failed ({found.detail})",
                              status=502) from found.cause
        detail = {"status": f"{found.url} answered HTTP {found.detail}",
                  "not-json": "smart-configuration is not JSON"}.get(
            found.reason, "smart-configuration lacks authorization or token endpoint")
        raise LaunchError("EHR discovery failed", detail, status=502) from found.cause
    auth, token = found.authorization_endpoint, found.token_endpoint
    if auth is None:
        raise LaunchError("EHR discovery failed",
                          "smart-configuration lacks authorization or token endpoint",
                          status=502)
    for endpoint in (auth, token):
        if not same_origin_or_https(endpoint, iss):
            # SMART 2.2: TLS; plain http is accepted only on the EHR's own host (sandboxes)
            raise LaunchError("EHR discovery failed",
                              "an endpoint is neither https nor on the EHR's host", status=502)
    if found.code_challenge_methods and "S256" not in found.code_challenge_methods:
        raise LaunchError("EHR not supported", "the EHR does not support PKCE S256", status=502)
    issuer = found.issuer
    if not ("sso-openid-connect" in found.capabilities and issuer is not None
            and same_origin_or_https(issuer, iss)):
        issuer = None
    revocation = found.revocation_endpoint
    if revocation is not None and not same_origin_or_https(revocation, iss):
        # never send a token over plain http to another host; sign-out then only forgets
        log.warning("revocation_endpoint ignored: neither https nor on the EHR's host")
        revocation = None
    return LaunchConfiguration(auth, token, found.capabilities, found.code_challenge_methods,
                               issuer, revocation)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636 4.1-4.2 (43-128 chars verifier)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_state() -> str:
    """256 random bits (SMART 2.2 asks for at least 122); also the OpenID ``nonce``."""
    return secrets.token_urlsafe(32)


def authorize_url(config: LaunchConfiguration, *, client_id: str, redirect_uri: str, scope: str,
                  state: str, aud: str, code_challenge: str, launch: str | None,
                  nonce: str | None = None) -> str:
    params = {
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": scope, "state": state, "aud": aud,
        "code_challenge": code_challenge, "code_challenge_method": "S256",
    }
    if launch is not None:
        params["launch"] = launch
    if nonce is not None:  # OpenID Connect Core 3.1.2.1: bound to the session, checked
        params["nonce"] = nonce
    sep = "&" if urlsplit(config.authorization_endpoint).query else "?"
    return f"{config.authorization_endpoint}{sep}{urlencode(params)}"


class ClientAuth:
    """How the app authenticates at the token endpoint: public (client_id only),
    confidential symmetric (HTTP Basic, RFC 6749 2.3.1) or asymmetric (private_key_jwt,
    RFC 7523, a fresh assertion per request)."""

    def __init__(self, settings: SmartSettings) -> None:
        assert settings.client_id is not None
        self.client_id = settings.client_id
        self._secret = settings.client_secret
        self._key: SigningKey | None = None
        if settings.private_key_file is not None:
            self._key = load_signing_key(settings.private_key_file, key_id=settings.key_id)

    @property
    def kind(self) -> str:
        if self._key is not None:
            return "private_key_jwt"
        return "client_secret_basic" if self._secret is not None else "public"

    def apply(self, data: dict[str, str], token_endpoint: str) -> httpx.BasicAuth | None:
        if self._key is not None:
            data["client_assertion_type"] = ASSERTION_TYPE
            data["client_assertion"] = sign_client_assertion(
                self._key, client_id=self.client_id, token_endpoint=token_endpoint)
            return None
        if self._secret is not None:
            from urllib.parse import quote

            # RFC 6749 2.3.1: form-urlencode both parts before Basic encoding
            return httpx.BasicAuth(quote(self.client_id, safe=""),
                                   quote(self._secret.get_secret_value(), safe=""))
        data["client_id"] = self.client_id
        return None


async def _token_request(client: httpx.AsyncClient, auth: ClientAuth, token_endpoint: str,
                         data: dict[str, str]) -> dict[str, Any]:
    basic = auth.apply(data, token_endpoint)
    try:
        headers = {"Accept": "application/json"}
        if basic is not None:
            resp = await client.post(token_endpoint, data=data, auth=basic, headers=headers)
        else:
            resp = await client.post(token_endpoint, data=data, headers=headers)
    except httpx.HTTPError as exc:
        raise LaunchError("Sign-in failed",
                          f"the EHR token endpoint is not reachable ({type(exc).__name__})",
                          status=502) from exc
    if resp.status_code != 200:
        raise LaunchError("Sign-in failed",
                          f"the EHR refused the token request ({describe_oauth_error(resp)})",
                          status=502)
    body = read_token_response(resp, require_token_type=True)
    if isinstance(body, TokenProblem):
        detail = {"not-json": "the token response is not JSON",
                  "no-access-token": "the token response has no access_token",
                  "not-bearer": "the token is not a bearer token"}[body.reason]
        raise LaunchError("Sign-in failed", detail, status=502) from body.cause
    return body


def _fhir_context(raw: Any) -> list[str]:
    """SMART 2.2 ``fhirContext``: objects with ``reference`` (v1 apps sent bare strings)."""
    out: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        ref = item.get("reference") if isinstance(item, dict) else item
        if isinstance(ref, str) and ref:
            out.append(ref)
    return out


def grant_from_token(body: dict[str, Any], *, previous: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
    """The session fields kept from a token response (a refresh keeps the launch context
    of the original grant when the EHR does not repeat it)."""
    prev = previous or {}
    lifetime = token_lifetime(body)
    grant = {
        "access_token": body["access_token"],
        "refresh_token": body.get("refresh_token") or prev.get("refresh_token"),
        "expires_at": time.time() + lifetime,
        "scope": body.get("scope", prev.get("scope", "")),
        "patient": body.get("patient", prev.get("patient")),
        "encounter": body.get("encounter", prev.get("encounter")),
        "fhir_context": _fhir_context(body["fhirContext"]) if "fhirContext" in body
        else prev.get("fhir_context", []),
        "need_patient_banner": bool(body.get("need_patient_banner",
                                             prev.get("need_patient_banner", False))),
        "smart_style_url": body.get("smart_style_url", prev.get("smart_style_url")),
    }
    return grant


async def exchange_code(client: httpx.AsyncClient, auth: ClientAuth, *, token_endpoint: str,
                        code: str, redirect_uri: str, code_verifier: str) -> dict[str, Any]:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier}
    return await _token_request(client, auth, token_endpoint, data)


async def refresh(client: httpx.AsyncClient, auth: ClientAuth, *, token_endpoint: str,
                  refresh_token: str) -> dict[str, Any]:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await _token_request(client, auth, token_endpoint, data)


async def revoke(client: httpx.AsyncClient, auth: ClientAuth, *, revocation_endpoint: str,
                 token_endpoint: str, token: str, hint: str) -> bool:
    """RFC 7009 2.1: revoke ``token`` (``hint``: access_token or refresh_token), the client
    authenticated as at the token endpoint (a private_key_jwt assertion keeps the token
    endpoint as its audience, SMART 2.2 "Client Authentication: Asymmetric").  True when
    the EHR answered 200 (it does for an unknown token too, 2.2); failures are logged, not
    raised: sign-out goes on."""
    data = {"token": token, "token_type_hint": hint}
    basic = auth.apply(data, token_endpoint)
    headers = {"Accept": "application/json"}
    try:
        if basic is not None:
            resp = await client.post(revocation_endpoint, data=data, auth=basic,
                                     headers=headers)
        else:
            resp = await client.post(revocation_endpoint, data=data, headers=headers)
    except httpx.HTTPError as exc:
        log.warning("token revocation failed", extra={"error_type": type(exc).__name__,
                                                      "token_type": hint})
        return False
    if resp.status_code != 200:
        log.warning("token revocation refused", extra={"status": resp.status_code,
                                                       "token_type": hint})
        return False
    return True
