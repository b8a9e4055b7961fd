"""The SMART app's history shows each study's report (status, impression, a link to the full
report) and dose, and the patient's cumulative CT DLP over a chosen period; the report page
shows the text and hands out its PDF; another patient's report is refused.  Against the real
sandbox EHR (which enforces the granted scopes) in front of a small FHIR server."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Request
from sandbox_ehr import SandboxEhr

from tests.support.fake_fhir import FakeFhir
from tests.support.ports import free_port
from tests.support.servers import ServedApp
from tests.unit.smart_app.conftest import Browser
from tests.unit.smart_app.servers import imaging_study, smart_only_app, smart_settings

PATIENT, OTHER = "p1", "p2"
RECORD_SCOPES = ["online_access", "patient/DiagnosticReport.rs", "patient/Observation.rs"]
DCM = "http://dicom.nema.org/resources/ontology/DCM"
PDF = b"%PDF-1.4 a small document"


def _report(rid: str, patient: str, study: str, status: str, conclusion: str,
            forms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "DiagnosticReport", "id": rid, "status": status,
            "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4",
                                 "display": "Diagnostic imaging study"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "imagingStudy": [{"reference": f"ImagingStudy/{study}"}],
            "conclusion": conclusion, "issued": "2021-03-11T12:00:00+01:00",
            "resultsInterpreter": [{"display": "Dr. Reader"}], "presentedForm": forms}


def _summary(oid: str, study: str, when: str, dlp: float, unit: str = "mGy.cm"
             ) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "73569-6"}]},
            "subject": {"reference": f"Patient/{PATIENT}"},
            "partOf": [{"reference": f"ImagingStudy/{study}"}], "effectiveDateTime": when,
            "component": [{"code": {"coding": [{"system": DCM, "code": "113813"}]},
                           "valueQuantity": {"value": dlp, "unit": unit, "code": unit}}]}


def _text(value: str) -> dict[str, Any]:
    return {"contentType": "text/plain; charset=utf-8",
            "data": base64.b64encode(value.encode()).decode()}


@pytest.fixture(scope="module")
def fhir() -> Iterator[FakeFhir]:
    fake = FakeFhir()
    fake.add({"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Testperson"}]})
    fake.studies = [imaging_study(1, PATIENT, year=2021, modality="CT"),
                    imaging_study(2, PATIENT, year=2023, modality="CT"),
                    imaging_study(3, PATIENT, year=2024, modality="MR")]
    reports = [
        _report("r1", PATIENT, "is-p1-1", "final", "No acute findings.",
                [_text("Findings:\nLungs clear.\nImpression:\nNo acute findings.\n"),
                 {"contentType": "application/pdf", "title": "Signed report",
                  "data": base64.b64encode(PDF).decode()}]),
        _report("r2", PATIENT, "is-p1-2", "preliminary", "Stable nodule.", []),
        _report("r9", OTHER, "is-p2-1", "final", "Someone else.", []),
    ]
    for report in reports:
        fake.add(report)
    summaries = [_summary("o1", "is-p1-1", "2021-01-11T10:00:00Z", 450.0),
                 _summary("o2", "is-p1-2", "2023-02-12T10:00:00Z", 0.3, unit="Gy.cm")]
    asked: list[str] = []
    fake.asked = asked  # type: ignore[attr-defined]

    def search(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
        asked.append(request.url.path.rsplit("/", 1)[1])
        pid = request.query_params.get("patient", "")
        return {"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": r, "search": {"mode": "match"}} for r in items
            if r["subject"]["reference"] == f"Patient/{pid}"]}

    @fake.app.get("/fhir/DiagnosticReport")
    async def report_search(request: Request) -> dict[str, Any]:
        return search(reports, request)

    @fake.app.get("/fhir/Observation")
    async def observation_search(request: Request) -> dict[str, Any]:
        assert request.query_params.get("code") == "http://loinc.org|73569-6"
        return search(summaries, request)

    with fake.serve():
        yield fake


@pytest.fixture
def ehr(fhir: FakeFhir) -> Iterator[SandboxEhr]:
    server = SandboxEhr(fhir.base).start()
    yield server
    server.stop()


@pytest.fixture
def app(ehr: SandboxEhr, tmp_path: Path) -> Iterator[Callable[..., str]]:
    started: list[ServedApp] = []

    def make(*, scopes: list[str]) -> str:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        ehr.register_client("imaging-app", redirect_uris=[f"{base}/smart/callback"],
                            launch_url=f"{base}/smart/launch")
        settings = smart_settings(tmp_path, port=port, iss=ehr.fhir_url, extra_scopes=scopes)
        started.append(ServedApp(smart_only_app(settings), port=port).start())
        return base

    yield make
    for served in started:
        served.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()


def _cell(page: str, uid: str, name: str) -> str:
    row = re.search(rf'data-study-uid="{re.escape(uid)}">(.*?)</tr>', page, re.S)
    assert row is not None, uid
    cell = re.search(rf'<td data-testid="{name}">(.*?)</td>', row.group(1), re.S)
    assert cell is not None, name
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell.group(1))).strip()


def test_the_history_shows_each_studys_report_and_dose_and_the_cumulative_dlp(
    ehr: SandboxEhr, app: Callable[..., str], browser: Browser
) -> None:
    base = app(scopes=RECORD_SCOPES)
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT)).text
    assert _cell(page, "1.2.826.0.1.1", "report") == "final No acute findings."
    assert 'href="/app/report/r1"' in page
    assert _cell(page, "1.2.826.0.1.1", "dose") == "DLP 450 mGy·cm"
    assert _cell(page, "1.2.826.0.1.2", "report") == "preliminary Stable nodule."
    assert _cell(page, "1.2.826.0.1.2", "dose") == "DLP 300 mGy·cm"  # 0.3 Gy.cm
    assert _cell(page, "1.2.826.0.1.3", "report") == ""  # the MR has none
    total = re.search(r'data-testid="cumulative-dlp">([^<]*)<', page)
    assert total is not None and total.group(1) == "750 mGy·cm"
    since = browser.client.get(f"{base}/app/history", params={"dose_from": "2022-01-01"}).text
    total = re.search(r'data-testid="cumulative-dlp">([^<]*)<', since)
    assert total is not None and total.group(1) == "300 mGy·cm"
    assert "1 CT dose report, 2022-01-01 to" in since


def test_the_report_page_shows_its_text_and_hands_out_its_pdf(
    ehr: SandboxEhr, app: Callable[..., str], browser: Browser
) -> None:
    base = app(scopes=RECORD_SCOPES)
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    page = browser.client.get(f"{base}/app/report/r1")
    assert page.status_code == 200
    assert 'data-testid="report-status">final<' in page.text
    assert "Lungs clear." in page.text and "Dr. Reader" in page.text
    assert 'href="/app/history" data-testid="back-to-history"' in page.text
    document = browser.client.get(f"{base}/app/report/r1/form/1")
    assert (document.status_code, document.content) == (200, PDF)
    assert document.headers["content-type"] == "application/pdf"
    assert "sandbox" in document.headers["content-security-policy"]
    # another patient's report: the sandbox EHR refuses it already (the app would too)
    refused = browser.client.get(f"{base}/app/report/r9")
    assert refused.status_code == 403 and "Someone else" not in refused.text


def test_without_the_record_scopes_the_history_is_as_before(
    ehr: SandboxEhr, app: Callable[..., str], browser: Browser, fhir: FakeFhir
) -> None:
    app(scopes=["online_access"])
    fhir.asked.clear()  # type: ignore[attr-defined]
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT)).text
    assert 'data-testid="study"' in page
    assert 'data-testid="report"' not in page and "Cumulative CT DLP" not in page
    assert fhir.asked == []  # type: ignore[attr-defined]
