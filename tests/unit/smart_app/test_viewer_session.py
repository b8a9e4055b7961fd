"""The viewer's side of the SMART session (issue 20 items 1, 7, 8): fresh viewer tokens for
the app's own OHIF page from ``POST /app/viewer-token`` (no token in any URL), refused
cross-site and once the session ended; a study that is not the patient's (or exists
nowhere) answered with the app's own 403 page linking back to the history; the EHR's
``error_description`` shown, escaped.  Against the real sandbox EHR; the gateway is a
small stand-in holding studies for patients (the real one is proved in tests/e2e)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sandbox_ehr import SandboxEhr

from bridge.gateway.viewer_tokens import ViewerTokens
from smart_app.sessions import COOKIE_NAME, session_id
from smart_app.viewer import DataSource, OhifFiles, viewer_routes
from tests.support.ports import free_port
from tests.support.servers import ServedApp
from tests.unit.smart_app.conftest import OTHER, PATIENT, Browser
from tests.unit.smart_app.servers import smart_only_app, smart_settings

MINE, THEIRS, NOWHERE = "1.2.826.0.1.3", "1.2.826.0.1.100", "1.2.826.0.9.9"
RENEW = {"X-Bridge-Viewer": "renew", "Sec-Fetch-Site": "same-origin"}


@dataclass(frozen=True)
class Route:
    data_source_path: str


class Archives:
    """The gateway's archives as far as the app uses them: which holds a study as whose."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners
        self.default = Route("")

    async def holding(self, uid: str, ids: frozenset[tuple[str, str]] | None) -> Route | None:
        owner = self.owners.get(uid)
        return Route("") if owner is not None and ids and ("urn:p", owner) in ids else None


class StandInGateway:
    def __init__(self) -> None:
        self.viewer = ViewerTokens(secret="v" * 40, audience="http://gw/dicom-web",
                                   lifetime=5)
        self.tokens = SimpleNamespace(session_alive=None)
        self.session_resolver: Any = None
        self.archives = Archives({MINE: PATIENT, THEIRS: OTHER})

        async def identifiers_of(patient: str) -> frozenset[tuple[str, str]]:
            return frozenset({("urn:p", patient.removeprefix("Patient/"))})

        self.patients = SimpleNamespace(identifiers_of=identifiers_of)

    async def archive_for(self, patient: str, study_uids: list[str]) -> Route:
        return self.archives.default  # the real gateway's answer with one archive


@dataclass
class App:
    url: str
    state: Any
    gateway: StandInGateway


@pytest.fixture
def make_gw_app(ehr: SandboxEhr, tmp_path: Path) -> Iterator[Callable[..., App]]:
    started: list[ServedApp] = []

    def make(**smart: Any) -> App:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        ehr.register_client("imaging-app", redirect_uris=[f"{base}/smart/callback"],
                            launch_url=f"{base}/smart/launch")
        settings = smart_settings(tmp_path, port=port, iss=ehr.fhir_url, **smart)
        app = smart_only_app(settings)
        gateway = StandInGateway()
        app.state.gateway = gateway
        started.append(ServedApp(app, port=port).start())
        return App(base, app.state, gateway)

    yield make
    for s in started:
        s.stop()


def _signed_in(ehr: SandboxEhr, make_gw_app: Callable[..., App], browser: Browser) -> App:
    app = make_gw_app()
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert page.status_code == 200 and str(page.url).endswith("/app/history"), page.text[:300]
    return app


def test_the_page_gets_a_fresh_token_for_its_patient_bound_to_the_session(
    ehr: SandboxEhr, make_gw_app: Callable[..., App], browser: Browser
) -> None:
    app = _signed_in(ehr, make_gw_app, browser)
    first = browser.client.post(f"{app.url}/app/viewer-token", headers=RENEW)
    second = browser.client.post(f"{app.url}/app/viewer-token", headers=RENEW)
    assert first.status_code == second.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"  # RFC 6749 5.1
    body = first.json()
    assert body["token_type"] == "Bearer" and 1 <= body["expires_in"] <= 5
    assert second.json()["access_token"] != body["access_token"]
    claims = app.gateway.viewer.verify(body["access_token"])
    session = app.state.smart.store.get(browser.client.cookies.get(COOKIE_NAME))
    assert claims.patient == PATIENT and claims.session == session_id(session)
    assert claims.expires_at - claims.issued_at <= 5


def test_a_cross_site_or_scriptless_request_gets_no_token(
    ehr: SandboxEhr, make_gw_app: Callable[..., App], browser: Browser
) -> None:
    app = _signed_in(ehr, make_gw_app, browser)
    url = f"{app.url}/app/viewer-token"
    assert browser.client.post(url).status_code == 403  # a form cannot add the header
    cross = browser.client.post(url, headers={**RENEW, "Sec-Fetch-Site": "same-site"})
    assert cross.status_code == 403 and "access_token" not in cross.text
    assert browser.client.get(url).status_code == 405  # never a GET (no link, no cache)


def test_no_token_once_the_session_has_ended(
    ehr: SandboxEhr, make_gw_app: Callable[..., App], browser: Browser
) -> None:
    app = _signed_in(ehr, make_gw_app, browser)
    url = f"{app.url}/app/viewer-token"
    assert browser.client.post(url, headers=RENEW).status_code == 200
    app.state.smart.store.delete(browser.client.cookies.get(COOKIE_NAME))
    ended = browser.client.post(url, headers=RENEW)
    assert ended.status_code == 401 and ended.json()["error"] == "session_ended"
    assert "www-authenticate" in ended.headers


def test_opening_a_study_puts_no_token_in_the_url(
    ehr: SandboxEhr, make_gw_app: Callable[..., App], browser: Browser
) -> None:
    app = _signed_in(ehr, make_gw_app, browser)
    resp = browser.client.get(f"{app.url}/app/viewer", params={"StudyInstanceUIDs": MINE})
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/viewer/viewer?StudyInstanceUIDs={MINE}"


def test_ohif_loads_the_renewal_script_after_its_config_only_with_the_gateway(
    tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text('<script src="/app-config.js"></script>'
                                     '<script defer src="/app.bundle.0123456789abcdef.js">'
                                     '</script>')
    sources = [DataSource("a", "/dicom-web")]
    app = FastAPI()
    app.include_router(viewer_routes(OhifFiles(dist, session_script=True), sources=sources))
    client = TestClient(app)
    index = client.get("/viewer/viewer?StudyInstanceUIDs=1.2").text
    assert index.startswith('<script src="/viewer/app-config.js"></script>'
                            '<script src="/viewer/bridge-session.js"></script>')
    script = client.get("/viewer/bridge-session.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert "/app/viewer-token" in script.text and "getAuthorizationHeader" in script.text
    assert "back-to-history" in script.text and "Session ended" in script.text
    assert "script-src 'self'" in script.headers["content-security-policy"]
    plain = FastAPI()
    plain.include_router(viewer_routes(OhifFiles(dist), sources=sources))
    without = TestClient(plain)
    assert "bridge-session.js" not in without.get("/viewer/viewer").text
    assert without.get("/viewer/bridge-session.js").status_code == 404


@pytest.mark.parametrize("uid", [THEIRS, NOWHERE], ids=["another-patients", "unknown"])
def test_a_study_the_patient_may_not_open_gets_the_apps_own_403_page_with_a_way_back(
    ehr: SandboxEhr, make_gw_app: Callable[..., App], browser: Browser, uid: str
) -> None:
    app = _signed_in(ehr, make_gw_app, browser)
    resp = browser.client.get(f"{app.url}/app/viewer", params={"StudyInstanceUIDs": uid})
    assert resp.status_code == 403, resp.headers.get("location")
    assert 'data-testid="error"' in resp.text and "Study not available" in resp.text
    assert 'href="/app/history" data-testid="back-to-history"' in resp.text
    assert uid not in resp.text  # the same page for both: nothing about the UID
    both = browser.client.get(f"{app.url}/app/viewer",
                              params={"StudyInstanceUIDs": f"{MINE},{uid}"})
    assert both.status_code == 403  # every study is checked, not only the first


def test_the_error_page_shows_the_ehrs_error_description_escaped(
    ehr: SandboxEhr, make_gw_app: Callable[..., App], browser: Browser
) -> None:
    app = make_gw_app()
    resp = browser.client.get(ehr.launch_url_for("imaging-app", PATIENT))
    state = parse_qs(urlsplit(resp.headers["location"]).query)["state"][0]
    said = 'The scope <b>patient/*.*</b> is not allowed <script>alert(1)</script>'
    page = browser.client.get(f"{app.url}/smart/callback", params={
        "state": state, "error": "invalid_scope", "error_description": said})
    assert page.status_code == 400
    shown = re.search(r'data-testid="ehr-description">(.*?)</p>', page.text, re.S)
    assert shown is not None, page.text
    assert "The scope &lt;b&gt;patient/*.*&lt;/b&gt; is not allowed" in shown.group(1)
    assert "<script>" not in page.text and "<b>" not in page.text
    assert "invalid_scope" in page.text
