"""Helpers for driving the sandbox EHR's authorization code flow by hand (httpx): PKCE,
authorization parameters, the tester's approval, the token request."""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
from sandbox_ehr import SandboxEhr

REDIRECT = "http://app.test/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/Patient.r patient/ImagingStudy.rs"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()  # RFC 7636 4.2 S256
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(ehr: SandboxEhr, client_id: str, challenge: str, **over: str | None
                     ) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": SCOPE, "state": secrets.token_urlsafe(24), "aud": ehr.fhir_url,
        "code_challenge": challenge, "code_challenge_method": "S256", **over}
    return {k: v for k, v in params.items() if v is not None}


def approve(ehr: SandboxEhr, params: dict[str, str], patient: str) -> httpx.Response:
    """Show the consent page, then post the tester's approval with the picked patient."""
    with httpx.Client() as client:
        page = client.get(ehr.authorize_url, params=params)
        if page.status_code != 200:
            return page
        return client.post(ehr.authorize_url,
                           data={**params, "decision": "approve", "patient": patient})


def code_query(resp: httpx.Response) -> dict[str, list[str]]:
    assert resp.status_code == 302, resp.text
    return parse_qs(urlsplit(resp.headers["location"]).query)


def token_request(ehr: SandboxEhr, data: dict[str, str]) -> httpx.Response:
    return httpx.post(ehr.token_url, data=data)
