"""Sign-in identity (OpenID Connect id_token with fhirUser) and sign-out (RFC 7009 revocation)
of the SMART app against a real authorization server (the sandbox EHR, authlib)."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey
from sandbox_ehr import SandboxEhr

from smart_app.sessions import COOKIE_NAME
from tests.unit.smart_app.conftest import PATIENT, AppFactory, Browser, RunningApp


def _signed_in(ehr: SandboxEhr, app: RunningApp, browser: Browser) -> str:
    """Launch from the EHR; the history page's sign-out form token."""
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert page.status_code == 200 and str(page.url).endswith("/app/history"), page.text[:300]
    match = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert match is not None and 'action="/app/logout"' in page.text
    return match.group(1)


def _authorize_query(browser: Browser) -> dict[str, list[str]]:
    hop = next(h for h in browser.hops if "/authorize?" in h)
    return parse_qs(urlsplit(hop).query)


def _session(app: RunningApp, cookie: str | None) -> Any:
    return app.smart.store.get(cookie)


# --- identity ------------------------------------------------------------------------------


def test_id_token_is_validated_and_fhir_user_kept_in_the_session_never_logged(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app()
    _signed_in(ehr, app, browser)
    q = _authorize_query(browser)
    assert {"openid", "fhirUser"} <= set(q["scope"][0].split())
    assert len(q["nonce"][0]) >= 43 and q["nonce"] != q["state"]
    session = _session(app, browser.client.cookies.get(COOKIE_NAME))
    assert session.data["fhir_user"] == "Practitioner/sandbox-tester"
    assert session.data["revocation_endpoint"] == ehr.revocation_url
    assert "pending" not in session.data and "id_token" not in session.data
    assert all("sandbox-tester" not in r.getMessage() and "Practitioner/" not in str(r.__dict__)
               for r in caplog.records)


def test_a_patient_user_gets_a_patient_fhir_user(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    ehr.set_fhir_user(f"Patient/{PATIENT}")
    app = make_app()
    _signed_in(ehr, app, browser)
    session = _session(app, browser.client.cookies.get(COOKIE_NAME))
    assert session.data["fhir_user"] == f"Patient/{PATIENT}"


def test_identity_can_be_switched_off(ehr: SandboxEhr, make_app: AppFactory,
                                      browser: Browser) -> None:
    app = make_app(request_identity=False)
    _signed_in(ehr, app, browser)
    q = _authorize_query(browser)
    assert not {"openid", "fhirUser"} & set(q["scope"][0].split()) and "nonce" not in q
    assert _session(app, browser.client.cookies.get(COOKIE_NAME)).data["fhir_user"] is None


def _all_revoked(ehr: SandboxEhr) -> bool:
    tokens = [*ehr.store.refresh.values(), *ehr.store.access.values()]
    return bool(tokens) and all(t.revoked for t in tokens)


def test_a_tampered_id_token_ends_on_the_error_page_and_its_tokens_are_revoked(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox_ehr import oauth

    # signed by a key that is not the EHR's, under the EHR key's kid
    impostor = RSAKey.generate_key(2048, private=True, auto_kid=True)
    monkeypatch.setattr(oauth.SmartOpenIDCode, "resolve_client_private_key",
                        lambda self, client: impostor)
    app = make_app()
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert page.status_code == 401 and 'data-testid="error"' in page.text
    assert "Sign-in failed" in page.text and "signature" in page.text
    assert app.smart.store.count() == 0 and COOKIE_NAME not in browser.client.cookies
    assert _all_revoked(ehr)


def test_an_id_token_with_another_nonce_is_refused(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox_ehr import oauth

    monkeypatch.setattr(oauth.SmartOpenIDCode, "get_authorization_code_claims",
                        lambda self, code: {"nonce": "a-nonce-from-another-login"})
    app = make_app()
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert page.status_code == 401 and "nonce" in page.text and "possible replay" in page.text
    assert app.smart.store.count() == 0
    assert browser.client.get(f"{app.url}/app/history").status_code == 401


def test_openid_granted_without_an_id_token_is_refused(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox_ehr import oauth

    monkeypatch.setattr(oauth.SmartOpenIDCode, "process_token",
                        lambda self, grant, response: response[1])
    app = make_app()
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert page.status_code == 502 and "sent no id_token" in page.text
    assert app.smart.store.count() == 0


# --- sign-out -----------------------------------------------------------------------------


def test_logout_revokes_the_tokens_and_the_old_cookie_no_longer_works(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    form_token = _signed_in(ehr, app, browser)
    cookie = browser.client.cookies.get(COOKIE_NAME)
    data = _session(app, cookie).data
    access, refresh = data["access_token"], data["refresh_token"]
    assert ehr.introspect(access)["active"] and ehr.introspect(refresh)["active"]

    page = browser.client.post(f"{app.url}/app/logout", data={"form_token": form_token})
    assert page.status_code == 200 and 'data-testid="signed-out"' in page.text
    assert 'data-testid="revoked"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert f'{COOKIE_NAME}=""' in page.headers["set-cookie"]  # cleared
    assert ehr.introspect(access) == {"active": False}
    assert ehr.introspect(refresh) == {"active": False}
    assert app.smart.store.count() == 0
    # the old cookie, replayed, is no session at all
    with httpx.Client(cookies={COOKIE_NAME: cookie}) as stale:
        assert stale.get(f"{app.url}/app/history").status_code == 401
        assert stale.get(f"{app.url}/app/viewer?StudyInstanceUIDs=1.2.3").status_code == 401


@pytest.mark.parametrize(("form", "headers"), [
    pytest.param({}, {}, id="no-form-token"),
    pytest.param({"form_token": "guessed"}, {}, id="wrong-form-token"),
    pytest.param(None, {"Sec-Fetch-Site": "same-site"}, id="same-site-other-origin"),
    pytest.param(None, {"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
])
def test_a_forged_logout_is_refused_and_the_session_survives(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser, form: dict[str, str] | None,
    headers: dict[str, str],
) -> None:
    app = make_app()
    form_token = _signed_in(ehr, app, browser)
    access = _session(app, browser.client.cookies.get(COOKIE_NAME)).data["access_token"]
    page = browser.client.post(f"{app.url}/app/logout", headers=headers,
                               data=form if form is not None else {"form_token": form_token})
    assert page.status_code == 403 and "Sign-out refused" in page.text
    assert "still signed in" in page.text
    assert ehr.introspect(access)["active"]
    assert browser.client.get(f"{app.url}/app/history").status_code == 200


def test_the_form_token_of_one_session_does_not_sign_out_another(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    mine = _signed_in(ehr, app, browser)
    other = Browser()
    try:
        _signed_in(ehr, app, other)
        assert other.client.post(f"{app.url}/app/logout",
                                 data={"form_token": mine}).status_code == 403
    finally:
        other.close()


def test_logout_without_a_revocation_endpoint_still_ends_the_session(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox_ehr import app as sandbox_app

    original = sandbox_app.smart_configuration

    def without_revocation(server: Any, base_url: str) -> dict[str, Any]:
        config: dict[str, Any] = original(server, base_url)
        config.pop("revocation_endpoint")
        return config

    monkeypatch.setattr(sandbox_app, "smart_configuration", without_revocation)
    app = make_app()
    form_token = _signed_in(ehr, app, browser)
    access = _session(app, browser.client.cookies.get(COOKIE_NAME)).data["access_token"]
    page = browser.client.post(f"{app.url}/app/logout", data={"form_token": form_token})
    assert page.status_code == 200 and "offers no way to withdraw" in page.text
    assert ehr.introspect(access)["active"]  # nothing told the EHR
    assert app.smart.store.count() == 0


def test_logout_when_the_ehr_refuses_revocation_still_ends_the_session(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    form_token = _signed_in(ehr, app, browser)
    ehr.fail_client_auth(True)
    page = browser.client.post(f"{app.url}/app/logout", data={"form_token": form_token})
    assert page.status_code == 200 and "could not be told" in page.text
    assert app.smart.store.count() == 0
    assert browser.client.get(f"{app.url}/app/history").status_code == 401


def test_logout_without_a_session_shows_the_signed_out_page(
    make_app: AppFactory, browser: Browser
) -> None:
    app = make_app()
    page = browser.client.post(f"{app.url}/app/logout", data={})
    assert page.status_code == 200 and "no session to end" in page.text


def test_a_confidential_client_authenticates_at_the_revocation_endpoint(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    app = make_app(client_secret="s3cret-" + "x" * 30, client_id="conf-app")
    page = browser.go(ehr.launch_url_for("conf-app", PATIENT))
    form_token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert form_token is not None
    refresh = _session(app, browser.client.cookies.get(COOKIE_NAME)).data["refresh_token"]
    page = browser.client.post(f"{app.url}/app/logout",
                               data={"form_token": form_token.group(1)})
    assert 'data-testid="revoked"' in page.text
    assert ehr.introspect(refresh) == {"active": False}
