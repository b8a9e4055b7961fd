"""Issue 12 item 7: only the CSRF-protected ``POST /app/logout`` ends a session.  A top-level
GET another site can trigger (a forged callback, a foreign or refused launch, bad viewer
parameters) shows its error page and leaves the browser's signed-in session alone (RFC 6749
10.12: the callback must not let another site act on the user's session)."""

from __future__ import annotations

import pytest
from sandbox_ehr import SandboxEhr

from smart_app.sessions import COOKIE_NAME
from tests.unit.smart_app.conftest import PATIENT, AppFactory, Browser, RunningApp


def _signed_in(ehr: SandboxEhr, app: RunningApp, browser: Browser) -> str:
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert page.status_code == 200 and str(page.url).endswith("/app/history"), page.text[:300]
    cookie = browser.client.cookies.get(COOKIE_NAME)
    assert cookie is not None
    return cookie


@pytest.mark.parametrize("path", [
    "/smart/callback?state=x&code=y",
    "/smart/callback?state=x&error=access_denied",
    "/smart/launch?iss=https://evil.example/fhir&launch=abc",
    "/smart/launch?launch=abc",
    "/app/viewer?StudyInstanceUIDs=abc",
    "/app/study/!!",
])
def test_a_failed_request_another_site_can_trigger_keeps_the_session(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser, path: str
) -> None:
    app = make_app()
    cookie = _signed_in(ehr, app, browser)
    page = browser.client.get(app.url + path)
    assert 400 <= page.status_code < 500 and 'data-testid="error"' in page.text
    assert COOKIE_NAME not in page.headers.get("set-cookie", "")  # the cookie is not cleared
    assert browser.client.cookies.get(COOKIE_NAME) == cookie
    assert app.smart.store.get(cookie) is not None
    assert browser.client.get(f"{app.url}/app/history").status_code == 200


def test_a_foreign_launch_that_is_never_completed_keeps_the_session(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    """A valid launch URL (allowed iss) sent by another site redirects to the EHR; until its
    callback succeeds, the signed-in session is untouched."""
    app = make_app()
    cookie = _signed_in(ehr, app, browser)
    resp = browser.client.get(f"{app.url}/smart/launch",
                              params={"iss": ehr.fhir_url, "launch": "foreign"})
    assert resp.status_code == 302 and resp.headers["location"].startswith(ehr.authorize_url)
    assert browser.client.cookies.get(COOKIE_NAME) == cookie
    assert browser.client.get(f"{app.url}/app/history").status_code == 200
    # a callback with the wrong state for that launch changes nothing either
    forged = browser.client.get(f"{app.url}/smart/callback?state=forged&code=stolen")
    assert forged.status_code == 400
    assert browser.client.get(f"{app.url}/app/history").status_code == 200


def test_a_completed_relaunch_replaces_the_session(
    ehr: SandboxEhr, make_app: AppFactory, browser: Browser
) -> None:
    """One browser, one session: a launch that completes rotates the cookie and deletes the
    previous session (no fixation, no orphan row)."""
    app = make_app()
    first = _signed_in(ehr, app, browser)
    second = _signed_in(ehr, app, browser)
    assert second != first
    assert app.smart.store.get(first) is None and app.smart.store.count() == 1
