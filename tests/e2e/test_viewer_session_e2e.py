"""The viewer outlives its five-minute token (issue 20 item 1) and never ends black (item 8),
in headless Chromium against the real product: OHIF renews its viewer token from the app
while the SMART session lives (the lifetime shortened to 5 s by configuration), shows
"Session ended — relaunch from the EHR" once the session has ended, and links back to the
history; a study the patient may not open gets the app's own page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from samples.generator import GeneratedStudy, generate_studies
from samples.load import load_studies
from samples.seed_ehr import seed_ehr
from smart_app.sessions import COOKIE_NAME
from tests.e2e.e2e_helpers import (
    APP_CLIENT,
    Product,
    fhir_patient_id,
    running_product,
    screenshot,
    study_day,
    sync_studies,
    wait_for_image,
)
from tests.integration.sync_helpers import study_by_uid

LIFETIME = 5.0  # seconds: gateway.viewer_token_lifetime in this module
LEEWAY = 5  # the gateway's clock leeway for viewer tokens (ViewerTokens.leeway)


@dataclass
class Patient:
    system: str
    value: str
    studies: list[GeneratedStudy] = field(default_factory=list)


@pytest.fixture(scope="module")
def patients(orthanc: Any, hapi: Any, tmp_path_factory: pytest.TempPathFactory
             ) -> list[Patient]:
    """Two patients with one study each of four series (so there is another series to
    load), in Orthanc and synced into HAPI."""
    prefix = uuid.uuid4().hex[:6].upper()
    # The "typical" profile's modality follows the draw, and OHIF shows an ultrasound
    # series as one thumbnail per instance (a random draw once gave 100 thumbnails where
    # the test counts four series): take the first draw of this prefix whose two studies
    # are CT or MR, each of four series.
    studies = next(draw for draw in (
        list(generate_studies(2, seed=seed, profile="typical", patients=2, id_prefix=prefix,
                              every_patient=True)) for seed in range(1, 500))
        if all(s.truth.modalities[0] in ("CT", "MR") for s in draw))
    assert all(len(s.truth.series) == 4 for s in studies)
    loaded = load_studies(studies, url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password)
    assert loaded.failed_studies == 0, loaded.errors
    seed_ehr([s.truth for s in studies], fhir_url=hapi.fhir_url, patients_fraction=1.0,
             seed=int(prefix, 16))
    days = [study_day(s.truth.study_date) for s in studies]
    sync_studies(orthanc, hapi, tmp_path_factory.mktemp("sync"), days)
    people: dict[tuple[str, str], Patient] = {}
    for s in studies:
        key = (s.truth.patient_system, s.truth.patient_id)
        people.setdefault(key, Patient(*key)).studies.append(s)
        assert len(study_by_uid(hapi, s.study_uid)) == 1
    assert len(people) == 2 and all(s.truth.series_count == 4 for s in studies)
    return sorted(people.values(), key=lambda p: p.value)


@pytest.fixture(scope="module")
def product(orthanc: Any, hapi: Any, patients: list[Patient],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(orthanc, hapi, tmp_path_factory.mktemp("bridge"),
                         auto_approve=True, viewer_token_lifetime=LIFETIME) as running:
        yield running


class GatewayTraffic:
    """Every answer of the gateway and of the token endpoint the page received."""

    def __init__(self, page: Any) -> None:
        self.gateway: list[tuple[str, int]] = []
        self.renewals: list[int] = []
        page.on("response", self._seen)

    def _seen(self, response: Any) -> None:
        if "/dicom-web/" in response.url:
            self.gateway.append((response.url, response.status))
        elif response.url.endswith("/app/viewer-token"):
            self.renewals.append(response.status)

    def refused(self) -> list[str]:
        return [url for url, status in self.gateway if status == 401]


def _launch(product: Product, hapi: Any, page: Any, patient: Patient) -> None:
    fhir_id = fhir_patient_id(hapi, patient.system, patient.value)
    page.goto(product.ehr.launch_url_for(APP_CLIENT, fhir_id))
    page.wait_for_url("**/app/history*")
    page.wait_for_selector('[data-testid="study"]')


def _open_study(product: Product, page: Any, uid: str) -> dict[str, Any]:
    """Open the study as the history's "Open" does; the viewer's first token answer."""
    with page.expect_response(lambda r: r.url.endswith("/app/viewer-token")) as first:
        page.goto(f"{product.url}/app/viewer?StudyInstanceUIDs={uid}")
    page.wait_for_url(f"**/viewer/viewer?StudyInstanceUIDs={uid}")
    assert "token" not in page.url  # never in the address, not even for a moment
    body: dict[str, Any] = first.value.json()
    wait_for_image(page, timeout=240)
    return body


def test_a_study_kept_open_past_the_token_lifetime_loads_another_series(
    product: Product, patients: list[Patient], hapi: Any, context: Any
) -> None:
    page = context.new_page()
    traffic = GatewayTraffic(page)
    study = patients[0].studies[0]
    _launch(product, hapi, page, patients[0])
    first = _open_study(product, page, study.study_uid)
    assert first["expires_in"] <= LIFETIME
    claims = product.app.app.state.gateway.viewer.verify(first["access_token"])
    # read the study until the first token is dead for the gateway too (its leeway passed)
    page.wait_for_function("t => Date.now() / 1000 > t", arg=claims.expires_at + LEEWAY + 1,
                           timeout=60_000)
    dead = httpx.get(f"{product.settings.gateway.public_url}/studies/{study.study_uid}"
                     "/metadata", headers={"Authorization": f"Bearer {first['access_token']}"},
                     timeout=60)
    assert dead.status_code == 401, "the first token should have expired by now"
    assert traffic.renewals.count(200) >= 3, traffic.renewals
    # now another series: double-click the last thumbnail of the study browser
    before = len(traffic.gateway)
    thumbnails = page.locator('[data-cy="study-browser-thumbnail"]')
    thumbnails.last.wait_for()
    assert thumbnails.count() == 4
    with page.expect_response(lambda r: "/dicom-web/" in r.url and (
            "/frames/" in r.url or r.url.endswith("/metadata")), timeout=120_000) as later:
        thumbnails.last.dblclick()
    assert later.value.status == 200, later.value.url
    assert len(traffic.gateway) > before
    wait_for_image(page, timeout=120)
    assert traffic.refused() == [], traffic.refused()[:5]
    assert page.locator('[data-testid="session-ended"]').count() == 0
    screenshot(page, "ohif-renewed-token.png")
    # a way back to the history from inside OHIF (item 8)
    page.locator('[data-testid="back-to-history"]').click()
    page.wait_for_url("**/app/history")
    page.wait_for_selector('[data-testid="study"]')


def test_when_the_session_ends_in_another_tab_the_viewer_says_relaunch(
    product: Product, patients: list[Patient], hapi: Any, context: Any
) -> None:
    viewer = context.new_page()
    study = patients[0].studies[0]
    _launch(product, hapi, viewer, patients[0])
    _open_study(product, viewer, study.study_uid)
    assert viewer.locator('[data-testid="session-ended"]').count() == 0
    other_tab = context.new_page()
    other_tab.goto(f"{product.url}/app/history")
    other_tab.click('[data-testid="logout"] button')
    other_tab.wait_for_selector('[data-testid="signed-out"]')
    ended = viewer.locator('[data-testid="session-ended"]')
    ended.wait_for(state="visible", timeout=60_000)  # at the next renewal (half-life)
    assert "Session ended \u2014 relaunch from the EHR" in ended.inner_text()
    screenshot(viewer, "ohif-session-ended.png")


def test_when_the_session_row_is_deleted_the_viewer_says_relaunch(
    product: Product, patients: list[Patient], hapi: Any, context: Any
) -> None:
    page = context.new_page()
    study = patients[1].studies[0]
    _launch(product, hapi, page, patients[1])
    _open_study(product, page, study.study_uid)
    cookie = next(c["value"] for c in context.cookies() if c["name"] == COOKIE_NAME)
    product.app.app.state.smart.store.delete(cookie)  # expired, purged, or removed
    page.locator('[data-testid="session-ended"]').wait_for(state="visible", timeout=60_000)


@pytest.mark.parametrize("whose", ["another-patients", "unknown"])
def test_a_study_not_the_patients_gets_the_apps_own_page_with_a_way_back(
    product: Product, patients: list[Patient], hapi: Any, context: Any, whose: str
) -> None:
    page = context.new_page()
    _launch(product, hapi, page, patients[0])
    uid = patients[1].studies[0].study_uid if whose == "another-patients" \
        else "1.2.826.0.1.3680043.99999.1"
    resp = page.goto(f"{product.url}/app/viewer?StudyInstanceUIDs={uid}")
    assert resp.status == 403 and "/viewer/" not in page.url
    assert page.locator('[data-testid="error"] h1').inner_text() == "Study not available"
    page.locator('[data-testid="back-to-history"]').click()
    page.wait_for_url("**/app/history")
    page.wait_for_selector('[data-testid="study"]')
