"""The sandbox EHR applies the SMART App Launch 2.2 checks independent test kits apply
(Inferno-style): each bad authorization request is refused and no code is issued."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sandbox_ehr import SandboxEhr

REDIRECT = "http://app.test/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/Patient.r patient/ImagingStudy.rs"


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()  # RFC 7636 4.2 S256
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.fixture
def app_client(sandbox_ehr: SandboxEhr, ns: Any) -> str:
    client_id = ns.name("viewer")
    sandbox_ehr.register_client(client_id, redirect_uris=[REDIRECT],
                                launch_url="http://app.test/launch")
    return client_id


@pytest.fixture
def patient_id(hapi: Any, ns: Any) -> str:
    with httpx.Client(timeout=60) as client:
        resp = client.post(f"{hapi.fhir_url}/Patient", json={
            "resourceType": "Patient",
            "identifier": [{"system": "urn:test", "value": ns.patient_id()}]})
        resp.raise_for_status()
        return str(resp.json()["id"])


def _params(ehr: SandboxEhr, client_id: str, challenge: str, **over: str | None
            ) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": SCOPE, "state": secrets.token_urlsafe(24), "aud": ehr.fhir_url,
        "code_challenge": challenge, "code_challenge_method": "S256", **over}
    return {k: v for k, v in params.items() if v is not None}


def _approve(ehr: SandboxEhr, params: dict[str, str], patient: str) -> httpx.Response:
    """Show the consent page, then post the tester's approval with the picked patient."""
    with httpx.Client() as client:
        page = client.get(ehr.authorize_url, params=params)
        if page.status_code != 200:
            return page
        return client.post(ehr.authorize_url,
                           data={**params, "decision": "approve", "patient": patient})


def _code(resp: httpx.Response) -> dict[str, list[str]]:
    assert resp.status_code == 302, resp.text
    return parse_qs(urlsplit(resp.headers["location"]).query)


def _assert_refused(resp: httpx.Response) -> None:
    """Refused: an error page, or a redirect carrying ``error`` -- never a code."""
    if resp.status_code == 302:
        query = parse_qs(urlsplit(resp.headers["location"]).query)
        assert "error" in query and "code" not in query, query
    else:
        assert resp.status_code >= 400
        assert "code=" not in resp.headers.get("location", "")


def _token(ehr: SandboxEhr, data: dict[str, str]) -> httpx.Response:
    return httpx.post(ehr.token_url, data=data)


def test_standalone_launch_gives_patient_context_and_the_proxy_enforces_it(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str, ns: Any,
) -> None:
    verifier, challenge = _pkce()
    params = _params(sandbox_ehr, app_client, challenge)
    query = _code(_approve(sandbox_ehr, params, patient_id))
    assert query["state"] == [params["state"]]
    resp = _token(sandbox_ehr, {"grant_type": "authorization_code", "code": query["code"][0],
                                "redirect_uri": REDIRECT, "client_id": app_client,
                                "code_verifier": verifier})
    assert resp.status_code == 200, resp.text
    token = resp.json()
    assert token["patient"] == patient_id
    assert token["token_type"].lower() == "bearer"
    assert "patient/ImagingStudy.rs" in token["scope"].split()
    assert token.get("refresh_token")
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    fhir = sandbox_ehr.fhir_url
    with httpx.Client(timeout=60) as client:
        assert client.get(f"{fhir}/ImagingStudy", params={"patient": patient_id},
                          headers=headers).status_code == 200
        # patient compartment: a search not restricted to the patient is refused, not emptied
        assert client.get(f"{fhir}/ImagingStudy", headers=headers).status_code == 403
        assert client.get(f"{fhir}/ImagingStudy", params={"patient": "someone-else"},
                          headers=headers).status_code == 403
        assert client.get(f"{fhir}/Patient/{patient_id}", headers=headers).status_code == 200
        # scope: no write permission
        assert client.post(f"{fhir}/Patient", json={"resourceType": "Patient"},
                           headers=headers).status_code == 403
        assert client.get(f"{fhir}/ImagingStudy", params={"patient": patient_id}
                          ).status_code == 401
    info = sandbox_ehr.introspect(token["access_token"])
    assert info["active"] and info["patient"] == patient_id and info["client_id"] == app_client

    # refresh (RFC 6749 6), then revocation makes the refresh token useless
    refreshed = _token(sandbox_ehr, {"grant_type": "refresh_token", "client_id": app_client,
                                     "refresh_token": token["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["patient"] == patient_id
    sandbox_ehr.revoke_refresh_tokens()
    again = _token(sandbox_ehr, {"grant_type": "refresh_token", "client_id": app_client,
                                 "refresh_token": refreshed.json()["refresh_token"]})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    sandbox_ehr.expire_tokens()
    expired = httpx.get(f"{fhir}/Patient/{patient_id}", headers=headers)
    assert expired.status_code == 401
    assert "invalid_token" in expired.headers["www-authenticate"]


def test_ehr_launch_carries_the_patient_chosen_on_the_launch_page(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str,
) -> None:
    page = httpx.post(sandbox_ehr.launch_page_url,
                      data={"client_id": app_client, "patient": patient_id})
    assert page.status_code == 302
    launch_url = urlsplit(page.headers["location"])
    launch_query = parse_qs(launch_url.query)
    assert launch_url.path == "/launch" and launch_query["iss"] == [sandbox_ehr.fhir_url]
    verifier, challenge = _pkce()
    params = _params(sandbox_ehr, app_client, challenge, launch=launch_query["launch"][0],
                     scope="launch openid fhirUser patient/ImagingStudy.rs")
    with httpx.Client() as client:
        resp = client.post(sandbox_ehr.authorize_url, data={**params, "decision": "approve"})
    code = _code(resp)["code"][0]
    token = _token(sandbox_ehr, {"grant_type": "authorization_code", "code": code,
                                 "redirect_uri": REDIRECT, "client_id": app_client,
                                 "code_verifier": verifier}).json()
    assert token["patient"] == patient_id


def test_unregistered_redirect_uri_is_refused_without_redirecting(
    sandbox_ehr: SandboxEhr, app_client: str,
) -> None:
    _, challenge = _pkce()
    resp = httpx.get(sandbox_ehr.authorize_url, params=_params(
        sandbox_ehr, app_client, challenge, redirect_uri="http://evil.test/callback"))
    assert resp.status_code == 400  # RFC 6749 4.1.2.1: never redirect to an unknown URI
    assert "location" not in resp.headers


@pytest.mark.parametrize("change", [
    pytest.param({"state": None}, id="missing-state"),
    pytest.param({"aud": "http://other.test/fhir"}, id="aud-not-this-fhir-server"),
    pytest.param({"aud": None}, id="missing-aud"),
    pytest.param({"code_challenge": None, "code_challenge_method": None},
                 id="missing-code-challenge"),
    pytest.param({"code_challenge_method": "plain"}, id="plain-method"),
    pytest.param({"code_challenge_method": None}, id="missing-method"),
    pytest.param({"launch": "not-a-launch", "scope": "launch patient/Patient.r"},
                 id="unknown-launch"),
])
def test_bad_authorization_request_is_refused(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str, change: dict[str, str | None],
) -> None:
    _, challenge = _pkce()
    params = _params(sandbox_ehr, app_client, challenge, **change)
    with httpx.Client() as client:
        _assert_refused(client.get(sandbox_ehr.authorize_url, params=params))
        # approving anyway (the consent form posted by hand) is refused too
        _assert_refused(client.post(sandbox_ehr.authorize_url,
                                    data={**params, "decision": "approve",
                                          "patient": patient_id}))


def test_code_verifier_mismatch_is_refused(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str,
) -> None:
    _, challenge = _pkce()
    other_verifier, _ = _pkce()
    code = _code(_approve(sandbox_ehr, _params(sandbox_ehr, app_client, challenge),
                          patient_id))["code"][0]
    resp = _token(sandbox_ehr, {"grant_type": "authorization_code", "code": code,
                                "redirect_uri": REDIRECT, "client_id": app_client,
                                "code_verifier": other_verifier})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"
    missing = _token(sandbox_ehr, {"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": REDIRECT, "client_id": app_client})
    assert missing.status_code == 400


def test_discovery_lists_the_smart_capabilities(sandbox_ehr: SandboxEhr) -> None:
    config = httpx.get(f"{sandbox_ehr.fhir_url}/.well-known/smart-configuration").json()
    for capability in ("launch-ehr", "launch-standalone", "client-public",
                       "client-confidential-symmetric", "client-confidential-asymmetric",
                       "context-ehr-patient", "context-standalone-patient", "permission-v2",
                       "smart-imaging-access"):
        assert capability in config["capabilities"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    for key in ("authorization_endpoint", "token_endpoint", "introspection_endpoint",
                "jwks_uri"):
        assert config[key].startswith(sandbox_ehr.base_url)


def test_introspection_endpoint_needs_a_confidential_client(
    sandbox_ehr: SandboxEhr, ns: Any,
) -> None:
    sandbox_ehr.register_client(ns.name("gw"), secret="gw-" + ns.token,
                                allowed_scopes=["system/Patient.rs"])
    token = _token(sandbox_ehr, {"grant_type": "client_credentials",
                                 "scope": "system/Patient.rs", "client_id": ns.name("gw"),
                                 "client_secret": "gw-" + ns.token}).json()
    auth = (ns.name("gw"), "gw-" + ns.token)
    info = httpx.post(sandbox_ehr.introspection_url, data={"token": token["access_token"]},
                      auth=auth).json()
    assert info["active"] is True and info["scope"] == "system/Patient.rs"
    assert httpx.post(sandbox_ehr.introspection_url, data={"token": "nope"},
                      auth=auth).json() == {"active": False}
    assert httpx.post(sandbox_ehr.introspection_url,
                      data={"token": token["access_token"]}).status_code == 401


def _patient_token(ehr: SandboxEhr, client_id: str, patient: str) -> str:
    verifier, challenge = _pkce()
    query = _code(_approve(ehr, _params(ehr, client_id, challenge), patient))
    resp = _token(ehr, {"grant_type": "authorization_code", "code": query["code"][0],
                        "redirect_uri": REDIRECT, "client_id": client_id,
                        "code_verifier": verifier})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def test_paging_continues_a_patient_search_but_not_for_another_patient(
    sandbox_ehr: SandboxEhr, app_client: str, hapi: Any, ns: Any,
) -> None:
    with httpx.Client(timeout=60) as client:
        ids = []
        for n in (1, 2):
            resp = client.post(f"{hapi.fhir_url}/Patient", json={
                "resourceType": "Patient",
                "identifier": [{"system": "urn:test", "value": ns.patient_id(n)}]})
            ids.append(str(resp.json()["id"]))
        for _ in range(3):  # three studies of patient 1: three pages of one
            client.post(f"{hapi.fhir_url}/ImagingStudy", json={
                "resourceType": "ImagingStudy", "status": "available",
                "subject": {"reference": f"Patient/{ids[0]}"}}).raise_for_status()
    own = {"Authorization": f"Bearer {_patient_token(sandbox_ehr, app_client, ids[0])}"}
    other = {"Authorization": f"Bearer {_patient_token(sandbox_ehr, app_client, ids[1])}"}
    seen = 0
    with httpx.Client(timeout=60) as client:
        bundle = client.get(f"{sandbox_ehr.fhir_url}/ImagingStudy",
                            params={"patient": ids[0], "_count": 1}, headers=own).json()
        next_url = None
        while True:
            seen += len(bundle.get("entry", []))
            nxt = [lnk["url"] for lnk in bundle.get("link", []) if lnk["relation"] == "next"]
            if not nxt:
                break
            next_url = nxt[0]
            assert next_url.startswith(sandbox_ehr.fhir_url)  # links point at the proxy
            # the continuation of patient 1's search is refused to patient 2's token
            assert client.get(next_url, headers=other).status_code == 403
            resp = client.get(next_url, headers=own)
            assert resp.status_code == 200, resp.text
            bundle = resp.json()
    assert next_url is not None and seen == 3
