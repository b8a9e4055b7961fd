"""The sandbox EHR applies the SMART App Launch 2.2 checks independent test kits apply
(Inferno-style): each bad authorization request is refused and no code is issued."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sandbox_ehr import SandboxEhr

from tests.integration.auth.smart_launch import (
    REDIRECT,
    approve,
    authorize_params,
    code_query,
    pkce,
    token_request,
)


def _assert_refused(resp: httpx.Response) -> None:
    """Refused: an error page, or a redirect carrying ``error`` -- never a code."""
    if resp.status_code == 302:
        query = parse_qs(urlsplit(resp.headers["location"]).query)
        assert "error" in query and "code" not in query, query
    else:
        assert resp.status_code >= 400
        assert "code=" not in resp.headers.get("location", "")


def test_standalone_launch_gives_patient_context_and_the_proxy_enforces_it(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str, ns: Any,
) -> None:
    verifier, challenge = pkce()
    params = authorize_params(sandbox_ehr, app_client, challenge)
    query = code_query(approve(sandbox_ehr, params, patient_id))
    assert query["state"] == [params["state"]]
    resp = token_request(sandbox_ehr, {
        "grant_type": "authorization_code", "code": query["code"][0],
        "redirect_uri": REDIRECT, "client_id": app_client, "code_verifier": verifier})
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
    refreshed = token_request(sandbox_ehr, {
        "grant_type": "refresh_token", "client_id": app_client,
        "refresh_token": token["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["patient"] == patient_id
    sandbox_ehr.revoke_refresh_tokens()
    again = token_request(sandbox_ehr, {
        "grant_type": "refresh_token", "client_id": app_client,
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
    verifier, challenge = pkce()
    params = authorize_params(sandbox_ehr, app_client, challenge,
                              launch=launch_query["launch"][0],
                              scope="launch openid fhirUser patient/ImagingStudy.rs")
    with httpx.Client() as client:
        resp = client.post(sandbox_ehr.authorize_url, data={**params, "decision": "approve"})
    code = code_query(resp)["code"][0]
    token = token_request(sandbox_ehr, {"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": REDIRECT, "client_id": app_client,
                                        "code_verifier": verifier}).json()
    assert token["patient"] == patient_id


def test_unregistered_redirect_uri_is_refused_without_redirecting(
    sandbox_ehr: SandboxEhr, app_client: str,
) -> None:
    _, challenge = pkce()
    resp = httpx.get(sandbox_ehr.authorize_url, params=authorize_params(
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
    _, challenge = pkce()
    params = authorize_params(sandbox_ehr, app_client, challenge, **change)
    with httpx.Client() as client:
        _assert_refused(client.get(sandbox_ehr.authorize_url, params=params))
        # approving anyway (the consent form posted by hand) is refused too
        _assert_refused(client.post(sandbox_ehr.authorize_url,
                                    data={**params, "decision": "approve",
                                          "patient": patient_id}))


def test_code_verifier_mismatch_is_refused(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str,
) -> None:
    _, challenge = pkce()
    other_verifier, _ = pkce()
    code = code_query(approve(sandbox_ehr, authorize_params(sandbox_ehr, app_client, challenge),
                              patient_id))["code"][0]
    resp = token_request(sandbox_ehr, {"grant_type": "authorization_code", "code": code,
                                       "redirect_uri": REDIRECT, "client_id": app_client,
                                       "code_verifier": other_verifier})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_grant"
    missing = token_request(sandbox_ehr, {"grant_type": "authorization_code", "code": code,
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
    token = token_request(sandbox_ehr, {"grant_type": "client_credentials",
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
    verifier, challenge = pkce()
    query = code_query(approve(ehr, authorize_params(ehr, client_id, challenge), patient))
    resp = token_request(ehr, {"grant_type": "authorization_code", "code": query["code"][0],
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
