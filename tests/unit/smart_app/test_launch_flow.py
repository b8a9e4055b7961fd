"""The SMART launch flow against a real authorization server (the sandbox EHR, authlib)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sandbox_ehr import SandboxEhr

from bridge.auth.keys import generate_signing_key, write_key_files
from smart_app.sessions import COOKIE_NAME
from tests.support.fake_fhir import FakeFhir
from tests.unit.smart_app.conftest import OTHER, PATIENT, AppFactory, Browser


def _study_uids(page: str) -> list[str]:
    return re.findall(r'data-study-uid="([^"]*)"', page)


def _authorize_request(browser: Browser) -> dict[str, list[str]]:
    hop = next(h for h in browser.hops if "/authorize?" in h)
    return parse_qs(urlsplit(hop).query)


def test_ehr_launch_lists_exactly_the_patients_studies_from_every_page(
    ehr: SandboxEhr, fhir: FakeFhir, make_app: AppFactory, browser: Browser,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app()
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert page.status_code == 200, page.text[:500]
    assert str(page.url).endswith("/app/history")
    expected = [s for s in fhir.studies if s["subject"]["reference"] == f"Patient/{PATIENT}"]
    expected.sort(key=lambda s: s["started"], reverse=True)
    uids = [s["identifier"][0]["value"].removeprefix("urn:oid:") for s in expected]
    assert _study_uids(page.text) == uids  # newest first, 7 studies over 3 pages
    assert sum("_offset" in r for r in fhir.requests) >= 2
    # the authorization request: PKCE S256, aud = iss, state >= 128 bits, launch, v2 scopes
    q = _authorize_request(browser)
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["aud"] == [ehr.fhir_url]
    assert len(q["state"][0]) >= 43  # 32 random bytes, base64url
    assert "launch" in q and q["redirect_uri"] == [f"{app.url}/smart/callback"]
    assert q["scope"][0].split()[:5] == ["launch", "openid", "fhirUser", "patient/Patient.r",
                                        "patient/ImagingStudy.rs"]
    # banner (the sandbox asks for it), grouping by year, accession, counts, filters
    assert 'data-testid="patient-banner"' in page.text and "Alba Testperson" in page.text
    assert "1970-05-04" in page.text and "MRN-1" in page.text
    assert re.findall(r'<h2 id="y(\d{4})">', page.text) == ["2018", "2017", "2016", "2015"]
    assert "ACC6" in page.text and ">16<" in page.text
    # the session cookie: opaque, HttpOnly, SameSite=Lax, not Secure on http loopback
    cookie_header = next(h for r in [page] for h in [r.request.headers.get("cookie", "")])
    assert COOKIE_NAME in cookie_header
    session = app.smart.store.get(browser.client.cookies.get(COOKIE_NAME))
    token = session.data["access_token"]
    assert token not in page.text and token not in cookie_header
    assert all(token not in r.getMessage() for r in caplog.records)
    assert all("Alba" not in r.getMessage() for r in caplog.records)


def test_session_cookie_flags(ehr: SandboxEhr, make_app: AppFactory, browser: Browser) -> None:
    make_app()
    url = ehr.launch_url_for("imaging-app", PATIENT)
    resp = browser.client.get(url)
    set_cookie = resp.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie.replace("Lax", "lax")
    assert "Secure" not in set_cookie  # plain-http loopback only


def test_filters_by_modality_and_body_site(ehr: SandboxEhr, make_app: AppFactory,
                                          browser: Browser) -> None:
    app = make_app()
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    ct = browser.client.get(f"{app.url}/app/history?modality=CT").text
    assert len(_study_uids(ct)) == 3
    head = browser.client.get(f"{app.url}/app/history?bodysite=Head").text
    assert len(_study_uids(head)) == 3  # n = 0, 3, 6
    both = browser.client.get(f"{app.url}/app/history?modality=CT&bodysite=Head").text
    assert len(_study_uids(both)) == 1
    recent = browser.client.get(f"{app.url}/app/history?mostRecentResults=2").text
    assert len(_study_uids(recent)) == 2


def test_standalone_launch_uses_the_ehr_patient_picker(
    ehr: SandboxEhr, make_app: AppFactory
) -> None:
    app = make_app()
    browser = Browser(patient=OTHER)
    try:
        page = browser.go(f"{app.url}/smart/launch")
        assert page.status_code == 200, page.text[:400]
        q = _authorize_request(browser)
        assert "launch" not in q and q["scope"][0].startswith("launch/patient ")
        assert _study_uids(page.text) == ["1.2.826.0.1.101", "1.2.826.0.1.100"]
    finally:
        browser.close()


def _no_session(app: Any, browser: Browser) -> None:
    assert app.smart.store.count() == 0
    assert browser.client.get(f"{app.url}/app/history").status_code == 401


def test_tampered_state_ends_on_the_error_page_with_no_session(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    resp = browser.client.get(ehr.launch_url_for("imaging-app", PATIENT))
    authorize = resp.headers["location"]
    resp = browser.client.get(authorize)
    if resp.status_code == 200:  # consent page
        form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', resp.text))
        form["decision"] = "approve"
        resp = browser.client.post(ehr.authorize_url, data=form)
    callback = resp.headers["location"]
    q = parse_qs(urlsplit(callback).query)
    forged = f"{app.url}/smart/callback?code={q['code'][0]}&state=forged{q['state'][0][6:]}"
    page = browser.client.get(forged)
    assert page.status_code == 400 and 'data-testid="error"' in page.text
    assert "state" in page.text
    _no_session(app, browser)


def test_iss_off_the_allow_list_is_refused_without_contacting_it(
    make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    page = browser.client.get(f"{app.url}/smart/launch",
                              params={"iss": "http://127.0.0.1:9/fhir", "launch": "x"})
    assert page.status_code == 403 and "iss is not allowed" in page.text
    _no_session(app, browser)


def test_denied_consent_ends_on_the_error_page_with_no_session(
    ehr: SandboxEhr, make_app: AppFactory
) -> None:
    app = make_app()
    browser = Browser(decision="deny")
    try:
        page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
        assert page.status_code == 403 and "denied" in page.text
        _no_session(app, browser)
    finally:
        browser.close()


def test_unknown_launch_or_unregistered_client_gives_error_page(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    page = browser.go(f"{app.url}/smart/launch?iss={ehr.fhir_url}&launch=not-a-launch")
    assert page.status_code == 400 and 'data-testid="error"' in page.text
    _no_session(app, browser)


def test_expired_access_token_is_renewed_with_the_refresh_token(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    session = app.smart.store.get(browser.client.cookies.get(COOKIE_NAME))
    first = session.data["access_token"]
    assert session.data["refresh_token"]
    assert ehr.expire_tokens() >= 1  # the EHR now refuses it: 401 -> refresh -> retry
    page = browser.client.get(f"{app.url}/app/history")
    assert page.status_code == 200 and len(_study_uids(page.text)) == 7
    renewed = app.smart.store.get(browser.client.cookies.get(COOKIE_NAME))
    assert renewed.data["access_token"] != first


def test_revoked_refresh_token_ends_the_session(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    ehr.expire_tokens()
    ehr.revoke_refresh_tokens()
    page = browser.client.get(f"{app.url}/app/history")
    assert page.status_code == 502 and "refused the token request" in page.text
    _no_session(app, browser)


def test_confidential_client_with_secret(ehr: SandboxEhr, make_app: AppFactory,
                                         browser: Browser) -> None:
    make_app(client_secret="s3cret-" + "x" * 30, client_id="conf-app")
    page = browser.go(ehr.launch_url_for("conf-app", PATIENT))
    assert page.status_code == 200 and len(_study_uids(page.text)) == 7


def test_wrong_client_secret_is_a_token_failure(ehr: SandboxEhr, make_app: AppFactory,
                                                browser: Browser) -> None:
    ehr.register_client("conf-app", secret="right-" + "r" * 30, redirect_uris=[])
    app = make_app(client_secret="wrong-" + "w" * 30, client_id="conf-app")
    ehr.register_client("conf-app", secret="right-" + "r" * 30,
                        redirect_uris=[f"{app.url}/smart/callback"],
                        launch_url=f"{app.url}/smart/launch")
    page = browser.go(ehr.launch_url_for("conf-app", PATIENT))
    assert page.status_code == 502 and "invalid_client" in page.text
    _no_session(app, browser)


def test_confidential_client_with_private_key_jwt(ehr: SandboxEhr, make_app: AppFactory,
                                                  browser: Browser, tmp_path: Path) -> None:
    files = write_key_files(generate_signing_key("ES384"), tmp_path / "keys")
    jwks = json.loads(files.jwks.read_text())
    make_app(jwks=jwks, client_id="jwt-app", private_key_file=files.private_key)
    page = browser.go(ehr.launch_url_for("jwt-app", PATIENT))
    assert page.status_code == 200 and len(_study_uids(page.text)) == 7


def test_v1_scopes_when_configured(ehr: SandboxEhr, make_app: AppFactory,
                                   browser: Browser) -> None:
    make_app(scope_form="v1")
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert page.status_code == 200
    scope = _authorize_request(browser)["scope"][0].split()
    assert "patient/ImagingStudy.read" in scope and "patient/Patient.read" in scope


def test_fhir_context_imaging_study_opens_the_viewer_directly(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox_ehr import oauth

    original = oauth._context_of

    def with_study(user: Any) -> dict[str, Any]:
        out: dict[str, Any] = original(user)
        out["fhirContext"] = [{"reference": f"ImagingStudy/is-{PATIENT}-3"}]
        return out

    monkeypatch.setattr(oauth, "_context_of", with_study)
    make_app()
    resp = browser.go(ehr.launch_url_for("imaging-app", PATIENT), stop_at="/viewer/")
    assert resp.status_code == 303
    # no token in the URL: the app's OHIF fetches its own (viewer_session, issue 20 item 1)
    assert resp.headers["location"] == "/viewer/viewer?StudyInstanceUIDs=1.2.826.0.1.3"


def test_viewer_link_is_a_redirect_and_rejects_non_uids(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app(
        viewer_url_template="https://pacs.example.org/stone/index.html?study={study_uids}")
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    resp = browser.client.get(f"{app.url}/app/viewer?StudyInstanceUIDs=1.2.3,4.5")
    assert resp.status_code == 303
    assert resp.headers["location"] == "https://pacs.example.org/stone/index.html?study=1.2.3,4.5"
    bad = browser.client.get(f"{app.url}/app/viewer?StudyInstanceUIDs=javascript:alert(1)")
    assert bad.status_code == 400


def test_not_signed_in_gets_401_page(make_app: AppFactory, browser: Browser) -> None:
    app = make_app()
    page = browser.client.get(f"{app.url}/app/history")
    assert page.status_code == 401 and "Not signed in" in page.text
