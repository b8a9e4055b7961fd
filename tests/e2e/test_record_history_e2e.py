"""End to end in headless Chromium (issue 16): with the record scopes granted, the SMART
app's history shows a study's report status and impression and its dose (DLP), and the
patient's cumulative CT DLP; the report link opens the report page, which links back.

The report and the dose summary are written to HAPI for one synced study of patient A,
as the record room writes them (DiagnosticReport ``imagingStudy``, Observation LOINC
73569-6 ``partOf`` the ImagingStudy, DLP total DCM 113813 in mGy.cm)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.e2e_helpers import APP_CLIENT, Product, fhir_patient_id, running_product
from tests.integration.conftest import Namespace
from tests.integration.gateway.gateway_helpers import World
from tests.integration.sync_helpers import study_by_uid

RECORD_SCOPES = ["online_access", "patient/DiagnosticReport.rs", "patient/Observation.rs"]
DCM = "http://dicom.nema.org/resources/ontology/DCM"
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


@pytest.fixture(scope="module")
def product(orthanc: Any, hapi: Any, world: World,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    with running_product(orthanc, hapi, tmp_path_factory.mktemp("bridge"), auto_approve=True,
                         extra_scopes=RECORD_SCOPES) as running:
        yield running


def _record(hapi: Any, study: dict[str, Any], impression: str) -> None:
    study_ref = {"reference": f"ImagingStudy/{study['id']}"}
    report = {"resourceType": "DiagnosticReport", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4",
                                   "display": "Diagnostic imaging study"}]},
              "subject": study["subject"], "imagingStudy": [study_ref],
              "conclusion": impression}
    dose = {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "73569-6"}]},
            "subject": study["subject"], "partOf": [study_ref],
            "effectiveDateTime": "2024-05-06T10:00:00Z",
            "component": [{"code": {"coding": [{"system": DCM, "code": "113813"}]},
                           "valueQuantity": {"value": 456.7, "unit": "mGy.cm",
                                             "system": "http://unitsofmeasure.org",
                                             "code": "mGy.cm"}}]}
    with httpx.Client(base_url=hapi.fhir_url, headers=FHIR_JSON, timeout=60) as client:
        for resource in (report, dose):
            resp = client.post(resource["resourceType"], json=resource)
            assert resp.status_code == 201, resp.text


def test_history_shows_the_studys_report_and_dose(
        product: Product, world: World, hapi: Any, ns: Namespace, page: Any) -> None:
    uid = world.a.studies[0]
    [study] = study_by_uid(hapi, uid)
    impression = f"No acute finding ({ns.token[:8]})."
    _record(hapi, study, impression)
    patient = fhir_patient_id(hapi, world.a.system, world.a.value)

    page.goto(product.ehr.launch_url_for(APP_CLIENT, patient))
    page.wait_for_url("**/app/history*")
    row = page.locator(f'[data-testid="study"][data-study-uid="{uid}"]')
    row.wait_for()
    report = row.locator('[data-testid="report"]')
    assert report.locator('[data-testid="report-status"]').inner_text() == "final"
    assert impression in report.locator('[data-testid="impression"]').inner_text()
    assert "DLP 457 mGy·cm" in row.locator('[data-testid="dose"]').inner_text()
    total = page.locator('[data-testid="cumulative-dlp"]').inner_text()
    assert float(total.split()[0]) >= 457  # this study's, and any the module wrote before

    report.locator('[data-testid="report-status"]').click()
    page.wait_for_url("**/app/report/*")
    assert impression in page.content()
    page.locator('a[href^="/app/history"]').first.click()
    page.wait_for_url("**/app/history*")
