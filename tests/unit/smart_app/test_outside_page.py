"""Outside imaging of the launched patient (issue 14): ``/app/outside`` lists what the
look-up found for the EHR Patient's identifiers, with each unreadable document named,
and says so when the patient has no affinity-domain identifier.  Against the sandbox EHR
and a small FHIR server; the look-up is a stand-in (the real one is tested against HAPI
in tests/integration/sharing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sandbox_ehr import SandboxEhr

from bridge.errors import FhirBusy
from bridge.sharing.errors import OutsideDocumentError
from bridge.sharing.find import OutsideDocument
from bridge.sharing.outside import OutsideStudies
from smart_app import smart_routes
from tests.support.fake_fhir import FakeFhir
from tests.support.ports import free_port
from tests.support.servers import ServedApp
from tests.support.wiring import data_sources, smart_app_of
from tests.unit.smart_app.conftest import PATIENT, Browser
from tests.unit.smart_app.servers import smart_settings

MRN = {"system": "https://hospital-b.example.org/fhir/sid/mrn", "value": "B-77"}


def outside_document(doc_id: str, study_uid: str) -> OutsideDocument:
    return OutsideDocument(
        id=doc_id, source="Hospital A imaging", date="2026-12-08T04:00:00+00:00",
        study_date="2024-03-01", study_uid=study_uid, modalities=("CT",),
        master_identifier="urn:oid:2.25.1", attachment_url="Binary/kos-1",
        mime_type="application/dicom", size=10, hash=None)


@dataclass
class Lookup:
    answer: OutsideStudies | Exception
    asked: list[list[dict[str, Any]]] = field(default_factory=list)

    async def for_patient(self, identifiers: Sequence[Mapping[str, Any]]) -> OutsideStudies:
        self.asked.append([dict(i) for i in identifiers])
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture(scope="module")
def fhir() -> Iterator[FakeFhir]:
    fake = FakeFhir()
    fake.add({"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Testperson"}],
              "identifier": [MRN]})
    with fake.serve():
        yield fake


@pytest.fixture
def outside_app(ehr: SandboxEhr, tmp_path: Path
                ) -> Iterator[Callable[[Lookup | None], str]]:
    started: list[ServedApp] = []

    def make(lookup: Lookup | None) -> str:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        ehr.register_client("imaging-app", redirect_uris=[f"{base}/smart/callback"],
                            launch_url=f"{base}/smart/launch")
        settings = smart_settings(tmp_path, port=port, iss=ehr.fhir_url)
        app = FastAPI()
        app.include_router(smart_routes(smart_app_of(settings), sources=data_sources(settings),
                                        viewer_session=False, outside=lookup))
        started.append(ServedApp(app, port=port).start())
        return base

    yield make
    for served in started:
        served.stop()


def test_the_outside_studies_of_the_launched_patient_are_listed_with_their_source(
        ehr: SandboxEhr, outside_app: Callable[[Lookup | None], str], browser: Browser
) -> None:
    problem = OutsideDocumentError("DocumentReference/d9: context.related has no Study "
                                   "Instance UID (urn:dicom:uid)", field="context.related",
                                   document="d9")
    lookup = Lookup(OutsideStudies((outside_document("d1", "1.2.3"),), (problem,), 1))
    base = outside_app(lookup)
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))

    answer = browser.client.get(f"{base}/app/outside.json").json()
    assert lookup.asked == [[MRN]]  # the EHR Patient's identifiers, as the EHR has them
    assert answer == {"asked": 1, "studies": [{
        "document": "d1", "source": "Hospital A imaging", "study_date": "2024-03-01",
        "study_uid": "1.2.3", "modalities": ["CT"]}], "problems": [{
        "document": "d9", "field": "context.related", "message": problem.message}]}
    history = browser.client.get(f"{base}/app/history").text
    assert 'href="/app/outside" data-testid="outside-link"' in history
    page = browser.client.get(f"{base}/app/outside").text
    assert page.count('data-testid="outside-study"') == 1
    assert "Hospital A imaging" in page and "context.related has no Study" in page


def test_a_patient_without_an_affinity_identifier_and_a_registry_down_are_said(
        ehr: SandboxEhr, outside_app: Callable[[Lookup | None], str], browser: Browser
) -> None:
    base = outside_app(Lookup(OutsideStudies((), (), 0)))
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert 'data-testid="outside-unmapped"' in browser.client.get(f"{base}/app/outside").text

    down = outside_app(Lookup(FhirBusy("FHIR server unreachable for mhd-find")))
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    resp = browser.client.get(f"{down}/app/outside.json")
    assert resp.status_code == 502
    assert "document registry did not answer (fhir-unavailable)" in resp.json()["error"]


def test_without_a_session_the_outside_page_asks_to_sign_in(
        outside_app: Callable[[Lookup | None], str], browser: Browser) -> None:
    base = outside_app(Lookup(OutsideStudies((), (), 0)))
    assert browser.client.get(f"{base}/app/outside.json").status_code == 401


def test_without_sharing_there_is_no_outside_page_nor_link(
        ehr: SandboxEhr, outside_app: Callable[[Lookup | None], str], browser: Browser
) -> None:
    base = outside_app(None)
    browser.go(ehr.launch_url_for("imaging-app", PATIENT))
    assert "outside-link" not in browser.client.get(f"{base}/app/history").text
    assert browser.client.get(f"{base}/app/outside").status_code == 404
