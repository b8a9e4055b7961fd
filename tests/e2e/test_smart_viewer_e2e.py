"""End to end in headless Chromium: the EHR launches the SMART app, the app lists the
patient's studies (as the archive has them), a click opens OHIF, which renders the first
image through the patient-scoped gateway with a viewer token.  Generous timeouts: this runs
on a slow, loaded 2-core machine."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from bridge.config import ApiSettings
from smart_app.sessions import COOKIE_NAME
from tests.e2e.compressed import store_jpeg2000_copy
from tests.e2e.e2e_helpers import (
    APP_CLIENT,
    Product,
    archive_study_uids,
    fhir_patient_id,
    screenshot,
    study_day,
    sync_studies,
    touch_patient,
    wait_for_image,
)
from tests.integration.gateway.gateway_helpers import World
from tests.integration.sync_helpers import study_by_uid
from tests.support.ports import free_port
from tests.support.servers import RunningGateway, ServedApp


@pytest.fixture(scope="module")
def world(world: World, hapi: Any) -> World:
    for uid in world.a.studies + world.b.studies:
        assert len(study_by_uid(hapi, uid)) == 1, "the backfill should have synced every study"
    return world


def _page_uids(page: Any) -> list[str]:
    rows = page.locator('[data-testid="study"]')
    return [rows.nth(i).get_attribute("data-study-uid") for i in range(rows.count())]


def _has_session_cookie(page: Any) -> bool:
    return any(c["name"] == COOKIE_NAME for c in page.context.cookies())


def _approve(page: Any, patient: str | None = None) -> None:
    page.wait_for_selector('button[value="approve"]')
    if patient is not None:
        page.select_option('select[name="patient"]', patient)
    page.click('button[value="approve"]')


def test_ehr_launch_lists_the_patients_studies_and_opens_the_first_image_in_ohif(
    product: Product, world: World, orthanc: Any, hapi: Any, page: Any
) -> None:
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    _approve(page)
    page.wait_for_url("**/app/history*")
    page.wait_for_selector('[data-testid="study"]')
    shown = _page_uids(page)
    assert len(shown) == len(set(shown))
    archive = archive_study_uids(orthanc, world.a.value, world.a.issuer)
    assert archive == set(world.a.studies), "the archive holds the generated studies"
    assert set(shown) == archive, f"page {sorted(shown)} != archive {sorted(archive)}"
    assert page.locator('[data-testid="patient-banner"]').count() == 1
    screenshot(page, "smart-history.png")

    page.locator('[data-testid="open"]').first.click()
    page.wait_for_url("**/viewer/viewer*")
    seconds = wait_for_image(page, timeout=240)
    page.wait_for_timeout(2000)  # OHIF starts its onboarding tour, when it has one, by now
    assert page.locator(".shepherd-element").count() == 0, "a tour covers the image"
    path = screenshot(page, "ohif-first-image.png")
    assert path.stat().st_size > 10_000
    assert "token=" not in page.url  # OHIF moved the token into its Authorization header
    assert f"StudyInstanceUIDs={shown[0]}" in page.url
    print(f"first image after {seconds:.1f} s")


def test_standalone_launch_with_the_ehr_patient_picker(
    product: Product, world: World, hapi: Any, page: Any
) -> None:
    patient = fhir_patient_id(hapi, world.b.system, world.b.value)
    touch_patient(hapi, patient)
    page.goto(f"{product.url}/smart/launch")
    _approve(page, patient=patient)
    page.wait_for_url("**/app/history*")
    page.wait_for_selector('[data-testid="study"]')
    assert set(_page_uids(page)) == set(world.b.studies)


def test_fhir_context_launch_opens_the_study_directly(
    product: Product, world: World, hapi: Any, page: Any
) -> None:
    uid = world.a.studies[-1]
    study_id = study_by_uid(hapi, uid)[0]["id"]
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient,
                                         fhir_context=(f"ImagingStudy/{study_id}",)))
    _approve(page)
    page.wait_for_url(f"**/viewer/viewer?StudyInstanceUIDs={uid}*")
    wait_for_image(page, timeout=240)
    screenshot(page, "ohif-fhircontext.png")


def test_tampered_state_ends_on_the_error_page_with_no_session(
    product: Product, world: World, hapi: Any, page: Any
) -> None:
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    page.wait_for_selector('button[value="approve"]')
    page.goto(f"{product.url}/smart/callback?code=stolen-code&state=forged-state-value")
    assert page.locator('[data-testid="error"]').is_visible()
    assert "state" in page.content()
    assert not _has_session_cookie(page)
    assert page.goto(f"{product.url}/app/history").status == 401


def test_iss_off_the_allow_list_ends_on_the_error_page_with_no_session(
    product: Product, page: Any
) -> None:
    resp = page.goto(f"{product.url}/smart/launch?iss=https://evil.example/fhir&launch=abc")
    assert resp.status == 403
    assert page.locator('[data-testid="error"]').is_visible()
    assert not _has_session_cookie(page)


def test_denied_consent_ends_on_the_error_page_with_no_session(
    product: Product, world: World, hapi: Any, page: Any
) -> None:
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    page.click('button[value="deny"]')
    page.wait_for_selector('[data-testid="error"]')
    assert "Access not granted" in page.content()
    assert not _has_session_cookie(page)
    assert page.goto(f"{product.url}/app/history").status == 401


def test_iid_study_request_opens_ohif_with_the_launch_session(
    product: Product, world: World, hapi: Any, page: Any, tmp_path: Path
) -> None:
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    _approve(page)
    page.wait_for_url("**/app/history*")
    uid = world.a.studies[0]
    page.goto(f"{product.url}/IHEInvokeImageDisplay?requestType=STUDY&studyUID={uid}")
    page.wait_for_url(f"**/viewer/viewer?StudyInstanceUIDs={uid}*")
    wait_for_image(page, timeout=240)
    other = world.b.studies[0]
    resp = page.goto(f"{product.url}/IHEInvokeImageDisplay?requestType=STUDY&studyUID={other}")
    assert resp.status == 403


def test_iid_patient_request_opens_the_filtered_history_and_needs_a_session(
    product: Product, world: World, hapi: Any, page: Any, chromium: Any
) -> None:
    iid = f"{product.url}/IHEInvokeImageDisplay"
    # no session: a browser that never launched the app is refused, and sees no study
    stranger = chromium.new_context()
    try:
        lost = stranger.new_page()
        resp = lost.goto(f"{iid}?requestType=STUDY&studyUID={world.a.studies[0]}")
        assert resp.status == 401
        assert "/viewer/" not in lost.url
    finally:
        stranger.close()

    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    _approve(page)
    page.wait_for_url("**/app/history*")
    page.wait_for_selector('[data-testid="study"]')
    everything = _page_uids(page)  # newest first
    assert set(everything) == set(world.a.studies)
    cx = quote(f"{world.a.value}^^^{world.a.issuer}")
    page.goto(f"{iid}?requestType=PATIENT&patientID={cx}&mostRecentResults=1")
    page.wait_for_url("**/app/history?*mostRecentResults=1*")
    page.wait_for_selector('[data-testid="study"]')
    assert _page_uids(page) == everything[:1]
    modality = next(iter(next(s.truth for s in world.studies
                              if s.study_uid == everything[-1]).modalities))
    expected = {s.study_uid for s in world.studies
                if s.study_uid in everything and modality in s.truth.modalities}
    page.goto(f"{iid}?requestType=PATIENT&patientID={cx}&modalitiesInStudy={modality}")
    page.wait_for_url(f"**/app/history?*modalitiesInStudy={modality}*")
    page.wait_for_selector('[data-testid="study"]')
    assert set(_page_uids(page)) == expected


def test_sign_out_revokes_the_ehr_tokens_and_the_old_cookie_no_longer_works(
    product: Product, world: World, hapi: Any, page: Any
) -> None:
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    _approve(page)
    page.wait_for_url("**/app/history*")
    cookie = next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE_NAME)
    data = product.app.app.state.smart.store.get(cookie).data
    assert data["fhir_user"] == "Practitioner/sandbox-tester"  # from the validated id_token
    uid = world.a.studies[0]
    # a viewer token handed out before the sign-out (not used yet, so not in the cache),
    # as the viewer page gets it: from the app, never in a URL
    with httpx.Client(cookies={COOKIE_NAME: cookie}, timeout=60) as live:
        opened = live.get(f"{product.url}/app/viewer", params={"StudyInstanceUIDs": uid})
        assert opened.status_code in (302, 303, 307), opened.text[:200]
        assert "token" not in opened.headers["location"]
        minted = live.post(f"{product.url}/app/viewer-token",
                           headers={"X-Bridge-Viewer": "renew"})
    assert minted.status_code == 200, minted.text[:200]
    viewer_token = minted.json()["access_token"]
    claims = product.app.app.state.gateway.viewer.verify(viewer_token)  # otherwise valid
    assert claims.session is not None
    page.click('[data-testid="logout"] button')
    page.wait_for_selector('[data-testid="signed-out"]')
    assert page.locator('[data-testid="revoked"]').is_visible()
    screenshot(page, "smart-signed-out.png")
    assert not _has_session_cookie(page)
    for token in (data["access_token"], data["refresh_token"]):
        assert product.ehr.introspect(token) == {"active": False}
    # the session is gone, and with it the viewer token it minted
    gone = httpx.get(f"{product.settings.gateway.public_url}/studies/{uid}/metadata",
                     headers={"Authorization": f"Bearer {viewer_token}"}, timeout=60)
    assert gone.status_code == 401 and "session" in gone.text, gone.text[:200]
    with httpx.Client(cookies={COOKIE_NAME: cookie}, timeout=60) as stale:
        assert stale.get(f"{product.url}/app/history").status_code == 401
        iid = stale.get(f"{product.url}/IHEInvokeImageDisplay",
                        params={"requestType": "STUDY", "studyUID": uid})
        assert iid.status_code == 401
    assert page.goto(f"{product.url}/app/history").status == 401


# --- security headers (issue 12 item 8) ---------------------------------------------------
# These come last in the module: the JPEG 2000 copy adds a study to patient B's history.

#: records the page's Content-Security-Policy violations (CSP Level 3 6.2 "Report a
#: violation": a securitypolicyviolation event at the document)
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(
  `${e.effectiveDirective} blocked ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`));
"""


def _watch_csp(page: Any) -> list[str]:
    """Chromium's console messages about the policy (the page's and its workers')."""
    seen: list[str] = []
    page.context.add_init_script(CSP_WATCH)
    page.on("console", lambda m: seen.append(m.text)
            if "Content Security Policy" in m.text or "EvalError" in m.text else None)
    page.on("pageerror", lambda e: seen.append(str(e)))
    return seen


def _directives(header: str) -> dict[str, str]:
    return {d.split()[0]: d.strip() for d in header.split(";") if d.strip()}


def test_every_page_carries_the_security_headers(product: Product, world: World) -> None:
    paths = ["/app/history", "/app/history.js", "/smart/launch?iss=https://evil.example/fhir",
             "/smart/callback?state=x&code=y", "/viewer/viewer", "/viewer/app-config.js",
             "/dicom-web/studies", f"/dicom-web/studies/{world.a.studies[0]}/metadata",
             "/IHEInvokeImageDisplay?requestType=STUDY", "/status", "/healthz"]
    with httpx.Client(timeout=60, follow_redirects=False) as client:
        for path in paths:
            resp = client.get(product.url + path)
            policy = _directives(resp.headers.get("content-security-policy", ""))
            assert policy.get("frame-ancestors") == "frame-ancestors 'self'", path
            assert "'unsafe-inline'" not in policy.get("script-src", "'unsafe-inline'"), path
            assert resp.headers.get("x-content-type-options") == "nosniff", path
            assert resp.headers.get("referrer-policy") == "no-referrer", path
            assert resp.headers.get("x-frame-options") == "SAMEORIGIN", path


def test_ohif_renders_plain_and_jpeg2000_images_under_its_policy_with_no_violation(
    product: Product, world: World, orthanc: Any, hapi: Any, page: Any,
    tmp_path: Path
) -> None:
    """OHIF under its Content-Security-Policy: an uncompressed image and a JPEG 2000 one
    (decoded by OHIF's WebAssembly codec in a web worker, whose Emscripten glue evaluates
    strings: without 'unsafe-eval' for the worker it fails with an EvalError) both
    render, and Chromium reports no violation of the policy."""
    source = world.b.studies[0]
    j2k = store_jpeg2000_copy(orthanc, source)
    day = next(study_day(s.truth.study_date) for s in world.studies if s.study_uid == source)
    # the sync runs its own event loop: not in this thread, where Playwright's runs
    with ThreadPoolExecutor(1) as pool:
        pool.submit(sync_studies, orthanc, hapi, tmp_path, [day]).result()
    assert len(study_by_uid(hapi, j2k)) == 1
    seen = _watch_csp(page)
    patient = fhir_patient_id(hapi, world.b.system, world.b.value)
    touch_patient(hapi, patient)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    _approve(page)
    page.wait_for_url("**/app/history*")
    page.wait_for_selector('[data-testid="study"]')
    assert set(_page_uids(page)) == {*world.b.studies, j2k}
    for uid in (source, j2k):
        resp = page.goto(f"{product.url}/app/viewer?StudyInstanceUIDs={uid}")
        page.wait_for_url(f"**/viewer/viewer?StudyInstanceUIDs={uid}*")
        policy = _directives(resp.headers["content-security-policy"])
        assert "'wasm-unsafe-eval'" in policy["script-src"]
        # the page: neither inline scripts nor eval (only its workers' scripts may eval)
        assert "'unsafe-inline'" not in policy["script-src"]
        assert "'unsafe-eval'" not in policy["script-src"]
        assert policy["frame-ancestors"] == "frame-ancestors 'self'"
        seconds = wait_for_image(page, timeout=240)
        print(f"{uid}: first image after {seconds:.1f} s under the CSP")
        seen += page.evaluate("window.__cspViolations")
    screenshot(page, "ohif-jpeg2000-csp.png")
    assert seen == [], seen


def test_only_the_configured_ehr_origins_may_frame_the_app(
    product: Product, page: Any
) -> None:
    """An EHR embedding the app (SMART apps are often shown in an iframe) may frame it when
    its origin is in ``api.frame_ancestors``; any other page may not (clickjacking)."""
    ehr_page = FastAPI()
    ehr = ServedApp(ehr_page)  # a real loopback origin: Chromium keeps a page Playwright
    ehr_origin = f"http://localhost:{ehr.port}"  # fulfils from framing loopback at all
    settings = product.settings.model_copy(deep=True)
    settings.api = ApiSettings(host="127.0.0.1", port=free_port(),
                               frame_ancestors=["'self'", ehr_origin])
    framed = RunningGateway(settings).start()

    @ehr_page.get("/ehr.html")
    async def frames() -> HTMLResponse:
        return HTMLResponse(f'<iframe id="ehr" src="{framed.url}/app/history"></iframe>'
                            f'<iframe id="other" src="{product.url}/app/history"></iframe>')

    ehr.start()
    try:
        page.goto(f"{ehr_origin}/ehr.html")  # "load" waits for both frames
        embedded = page.frame_locator("#ehr").locator("h1")
        embedded.wait_for(state="attached")  # in a 300 x 150 frame, maybe not "visible"
        assert embedded.text_content() == "Not signed in"  # the app's own page, in the EHR
        # the unlisted origin: Chromium shows its error page instead of the app
        other = page.locator("#other").element_handle().content_frame()
        assert other is not None and other.url == "chrome-error://chromewebdata/"
    finally:
        ehr.stop()
        framed.stop()
