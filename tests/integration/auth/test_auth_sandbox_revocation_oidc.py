"""Token revocation (RFC 7009) and the OpenID Connect id_token (SMART App Launch 2.2 "Scopes for
requesting identity data") of the sandbox EHR, in front of the real HAPI server."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sandbox_ehr import SandboxEhr

from tests.integration.auth.smart_launch import (
    REDIRECT,
    approve,
    authorize_params,
    code_query,
    pkce,
    token_request,
)

#: SMART App Launch 2.2 "Capabilities" (conformance.html), plus the Argonaut imaging draft's
SMART_CAPABILITIES = {
    "launch-ehr", "launch-standalone", "authorize-post", "client-public",
    "client-confidential-symmetric", "client-confidential-asymmetric", "sso-openid-connect",
    "context-banner", "context-style", "context-ehr-patient", "context-ehr-encounter",
    "context-standalone-patient", "context-standalone-encounter", "permission-offline",
    "permission-online", "permission-patient", "permission-user", "permission-v1",
    "permission-v2", "smart-app-state", "smart-imaging-access"}


def _grant(ehr: SandboxEhr, client_id: str, patient: str, *, scope: str | None = None,
           nonce: str | None = None) -> dict[str, Any]:
    """A standalone launch approved for ``patient``: the token response."""
    verifier, challenge = pkce()
    extra = {k: v for k, v in (("scope", scope), ("nonce", nonce)) if v is not None}
    params = authorize_params(ehr, client_id, challenge, **extra)
    query = code_query(approve(ehr, params, patient))
    resp = token_request(ehr, {"grant_type": "authorization_code", "code": query["code"][0],
                               "redirect_uri": REDIRECT, "client_id": client_id,
                               "code_verifier": verifier})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _revoke(ehr: SandboxEhr, data: dict[str, str], **kw: Any) -> httpx.Response:
    return httpx.post(ehr.revocation_url, data=data, **kw)


@pytest.fixture
def resource_server(sandbox_ehr: SandboxEhr, ns: Any) -> tuple[str, str]:
    """A confidential client that introspects (as the DICOMweb gateway would)."""
    client = (ns.name("rs"), "rs-" + ns.token)
    sandbox_ehr.register_client(client[0], secret=client[1], allowed_scopes=[])
    return client


def _introspect(ehr: SandboxEhr, auth: tuple[str, str], token: str) -> dict[str, Any]:
    resp = httpx.post(ehr.introspection_url, data={"token": token}, auth=auth)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_revoking_the_refresh_token_revokes_the_whole_grant(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str,
    resource_server: tuple[str, str],
) -> None:
    token = _grant(sandbox_ehr, app_client, patient_id)
    access, refresh = token["access_token"], token["refresh_token"]
    # a refresh first: the grant now has two access tokens and a rotated refresh token
    renewed = token_request(sandbox_ehr, {"grant_type": "refresh_token",
                                          "client_id": app_client, "refresh_token": refresh})
    assert renewed.status_code == 200, renewed.text
    access2, refresh2 = renewed.json()["access_token"], renewed.json()["refresh_token"]
    headers = {"Authorization": f"Bearer {access2}"}
    patient_url = f"{sandbox_ehr.fhir_url}/Patient/{patient_id}"
    assert httpx.get(patient_url, headers=headers, timeout=60).status_code == 200
    assert _introspect(sandbox_ehr, resource_server, access2)["active"] is True

    resp = _revoke(sandbox_ehr, {"token": refresh2, "token_type_hint": "refresh_token",
                                 "client_id": app_client})
    assert resp.status_code == 200 and resp.headers["cache-control"] == "no-store"

    for revoked in (access, access2, refresh2):  # RFC 7662 2.2: inactive, nothing more
        assert _introspect(sandbox_ehr, resource_server, revoked) == {"active": False}
    refused = httpx.get(patient_url, headers=headers, timeout=60)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    again = token_request(sandbox_ehr, {"grant_type": "refresh_token",
                                        "client_id": app_client, "refresh_token": refresh2})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_revoking_an_access_token_leaves_the_refresh_token_usable(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str,
) -> None:
    token = _grant(sandbox_ehr, app_client, patient_id)
    # no hint: the sandbox looks the token up among all types (RFC 7009 2.1)
    assert _revoke(sandbox_ehr, {"token": token["access_token"],
                                 "client_id": app_client}).status_code == 200
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{sandbox_ehr.fhir_url}/Patient/{patient_id}", headers=headers,
                     timeout=60).status_code == 401
    renewed = token_request(sandbox_ehr, {"grant_type": "refresh_token", "client_id": app_client,
                                          "refresh_token": token["refresh_token"]})
    assert renewed.status_code == 200, renewed.text
    headers = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
    assert httpx.get(f"{sandbox_ehr.fhir_url}/Patient/{patient_id}", headers=headers,
                     timeout=60).status_code == 200


def test_revocation_requests_that_rfc_7009_refuses_or_accepts(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str, ns: Any,
) -> None:
    token = _grant(sandbox_ehr, app_client, patient_id)
    # 2.2: an unknown (or already revoked) token is answered 200
    assert _revoke(sandbox_ehr, {"token": "never-issued",
                                 "client_id": app_client}).status_code == 200
    # 2.1: the client authenticates as at the token endpoint
    unauthenticated = _revoke(sandbox_ehr, {"token": token["refresh_token"]})
    assert unauthenticated.status_code in (400, 401)
    assert unauthenticated.json()["error"] == "invalid_client"
    sandbox_ehr.register_client(ns.name("conf"), secret="c-" + ns.token, redirect_uris=[])
    wrong_secret = _revoke(sandbox_ehr, {"token": token["refresh_token"]},
                           auth=(ns.name("conf"), "wrong"))
    assert wrong_secret.json()["error"] == "invalid_client"
    # 2.1: a token issued to another client is refused, and stays active
    other = _revoke(sandbox_ehr, {"token": token["refresh_token"]},
                    auth=(ns.name("conf"), "c-" + ns.token))
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    assert sandbox_ehr.introspect(token["refresh_token"])["active"] is True
    # 2.1: token is required
    missing = _revoke(sandbox_ehr, {"client_id": app_client})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_a_confidential_client_revokes_its_client_credentials_token(
    sandbox_ehr: SandboxEhr, ns: Any,
) -> None:
    auth = (ns.name("backend"), "b-" + ns.token)
    sandbox_ehr.register_client(auth[0], secret=auth[1], allowed_scopes=["system/Patient.rs"])
    token = token_request(sandbox_ehr, {"grant_type": "client_credentials",
                                        "scope": "system/Patient.rs", "client_id": auth[0],
                                        "client_secret": auth[1]}).json()["access_token"]
    assert _revoke(sandbox_ehr, {"token": token, "token_type_hint": "access_token"},
                   auth=auth).status_code == 200
    assert httpx.get(f"{sandbox_ehr.fhir_url}/Patient", params={"_count": 1},
                     headers={"Authorization": f"Bearer {token}"},
                     timeout=60).status_code == 401


def _verified_id_token(ehr: SandboxEhr, id_token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """SMART 2.2 "Steps for using an ID token": issuer -> openid-configuration -> JWKS."""
    config = httpx.get(ehr.openid_configuration_url).json()
    assert config["issuer"] == ehr.issuer
    keys = KeySet.import_key_set(httpx.get(config["jwks_uri"]).json())
    decoded = jwt.decode(id_token, keys, algorithms=config["id_token_signing_alg_values_supported"])
    return dict(decoded.header), dict(decoded.claims)


def test_openid_fhir_user_gives_a_signed_id_token_with_the_simulated_user(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str,
) -> None:
    token = _grant(sandbox_ehr, app_client, patient_id, nonce="n-" + "1" * 30)
    header, claims = _verified_id_token(sandbox_ehr, token["id_token"])
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["iss"] == sandbox_ehr.issuer and claims["aud"] == app_client
    assert claims["sub"] == "sandbox-tester"
    assert claims["fhirUser"] == "Practitioner/sandbox-tester"
    assert claims["nonce"] == "n-" + "1" * 30
    assert claims["iat"] <= time.time() + 5 < claims["exp"]
    assert "at_hash" in claims

    # a patient at a portal: fhirUser is the Patient; no nonce sent, none in the token
    sandbox_ehr.set_fhir_user(f"Patient/{patient_id}")
    token = _grant(sandbox_ehr, app_client, patient_id)
    _, claims = _verified_id_token(sandbox_ehr, token["id_token"])
    assert claims["fhirUser"] == f"Patient/{patient_id}" and "nonce" not in claims
    assert claims["sub"] != "sandbox-tester"


def test_id_token_only_with_openid_and_fhir_user_only_with_its_scope(
    sandbox_ehr: SandboxEhr, app_client: str, patient_id: str,
) -> None:
    without = _grant(sandbox_ehr, app_client, patient_id,
                     scope="launch/patient patient/Patient.r")
    assert "id_token" not in without
    openid_only = _grant(sandbox_ehr, app_client, patient_id,
                         scope="launch/patient openid patient/Patient.r")
    _, claims = _verified_id_token(sandbox_ehr, openid_only["id_token"])
    assert "fhirUser" not in claims and claims["sub"] == "sandbox-tester"


def test_a_nonce_is_accepted_once(sandbox_ehr: SandboxEhr, app_client: str,
                                  patient_id: str) -> None:
    _grant(sandbox_ehr, app_client, patient_id, nonce="once-" + "x" * 30)
    _, challenge = pkce()
    params = authorize_params(sandbox_ehr, app_client, challenge, nonce="once-" + "x" * 30)
    replay = approve(sandbox_ehr, params, patient_id)
    assert replay.status_code == 302
    query = code_query(replay)
    assert query["error"] == ["invalid_request"] and "code" not in query


def test_discovery_documents_for_revocation_and_openid_connect(
    sandbox_ehr: SandboxEhr,
) -> None:
    smart = httpx.get(f"{sandbox_ehr.fhir_url}/.well-known/smart-configuration").json()
    assert smart["revocation_endpoint"] == sandbox_ehr.revocation_url
    assert set(smart["capabilities"]) <= SMART_CAPABILITIES  # no invented codes
    assert "sso-openid-connect" in smart["capabilities"]
    assert {"openid", "fhirUser"} <= set(smart["scopes_supported"])
    assert smart["issuer"] == sandbox_ehr.issuer
    # SMART 2.2: sso-openid-connect needs {issuer}/.well-known/openid-configuration
    oidc = httpx.get(f"{smart['issuer']}/.well-known/openid-configuration").json()
    for key in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                "response_types_supported", "subject_types_supported",
                "id_token_signing_alg_values_supported"):  # OpenID Connect Discovery 3
        assert oidc[key], key
    assert oidc["issuer"] == smart["issuer"] and oidc["jwks_uri"] == smart["jwks_uri"]
    assert oidc["authorization_endpoint"] == smart["authorization_endpoint"]
    assert oidc["token_endpoint"] == smart["token_endpoint"]
    assert "RS256" in oidc["id_token_signing_alg_values_supported"]
