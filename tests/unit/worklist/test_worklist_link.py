"""The study link (``worklist.link``) against an in-process FHIR server: only an order
whose worklist Study Instance UID is the study's is linked (an accession reused by another
order is not enough), a study of another patient is refused (and the sync's accession link
to the order removed), a link the sync made is left as it is, and the order this process
scheduled is found by the UID alone."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import httpx
import pytest

from bridge.fhir.client import FhirClient
from bridge.sections.base import FhirSettings
from bridge.state.tasks import Task
from bridge.worklist.link import PatientMismatch, StudyLinker, StudyNotWritten
from bridge.worklist.mapper import study_instance_uid
from bridge.worklist.orders import OrderBook
from tests.unit.worklist.worklist_helpers import ct_order, site_mapping

V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _task(uid: str) -> Task:
    now = dt.datetime.now(dt.UTC)
    return Task(kind="worklist.link", key=f"main/{uid}", status="leased", payload=None,
                result=None, attempts=1, last_error=None, claimed_seq=1, due_at=now,
                lease_owner="t", updated_at=now, done_at=None)


class Ehr:
    def __init__(self, orders: list[dict[str, Any]], study: dict[str, Any] | None) -> None:
        self.orders = orders
        self.study = study
        self.puts: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "PUT":
            body = json.loads(request.content)
            self.puts.append(body)
            return httpx.Response(200, json=body)
        if path.endswith("/ImagingStudy"):
            entries = [{"resource": self.study}] if self.study else []
        elif path.endswith("/ServiceRequest"):
            value = request.url.params["identifier"]
            entries = [{"resource": o} for o in self.orders
                       if any(i.get("value") == value for i in o["identifier"])]
        else:  # a read
            order_id = path.rsplit("/", 1)[1]
            return httpx.Response(200, json=next(o for o in self.orders
                                                 if o["id"] == order_id))
        return httpx.Response(200, json={"resourceType": "Bundle", "entry": entries})


def _study(uid: str, subject: str, accession: str = "ACC0001",
           based_on: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"resourceType": "ImagingStudy", "id": "is-1", "meta": {"versionId": "3"},
            "subject": {"reference": subject},
            "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"},
                           {"type": {"coding": [{"system": V2, "code": "ACSN"}]},
                            "system": "urn:imaging-bridge:accession", "value": accession}],
            "basedOn": based_on if based_on is not None else [
                {"type": "ServiceRequest", "identifier": {"value": accession}}]}


def _run(ehr: Ehr, uid: str, book: OrderBook | None = None) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        async with FhirClient(FhirSettings(base_url="http://ehr.test/fhir"),
                              transport=httpx.MockTransport(ehr.handler)) as fhir:
            linker = StudyLinker(fhir=fhir, mapping=site_mapping(), book=book)
            return await linker.handle(_task(uid))
    return asyncio.run(go())


def test_the_order_whose_worklist_uid_is_the_studys_is_linked_literally() -> None:
    order, _ = ct_order()
    uid = study_instance_uid(order, site_mapping())
    # another order with the same accession (reused, or another issuer's): its own
    # placer number gives it another worklist Study Instance UID
    reused, _ = ct_order(id="sr-2", identifier=[
        {"type": {"coding": [{"system": V2, "code": "PLAC"}]}, "system": "urn:oid:1.2.3.4.1",
         "value": "OTHER-PLACER"},
        {"type": {"coding": [{"system": V2, "code": "ACSN"}]}, "value": "ACC0001"}])
    assert study_instance_uid(reused, site_mapping()) != uid
    ehr = Ehr([reused, order], _study(uid, "Patient/p-1"))
    result = _run(ehr, uid)
    assert result == {"linked": "ServiceRequest/sr-1", "by": "worklist"}
    [put] = ehr.puts
    assert put["basedOn"] == [{"reference": "ServiceRequest/sr-1"}]  # logical one replaced


def test_a_study_of_another_patient_is_not_linked() -> None:
    order, _ = ct_order()
    uid = study_instance_uid(order, site_mapping())
    ehr = Ehr([order], _study(uid, "Patient/someone-else"))
    with pytest.raises(PatientMismatch, match="not the subject"):
        _run(ehr, uid)
    assert ehr.puts == []
    # linked by the sync by accession, whatever the patient: the link is removed
    other = {"reference": "ServiceRequest/sr-other"}
    ehr = Ehr([order], _study(uid, "Patient/someone-else",
                              based_on=[{"reference": "ServiceRequest/sr-1"}, other]))
    with pytest.raises(PatientMismatch):
        _run(ehr, uid)
    assert [p["basedOn"] for p in ehr.puts] == [[other]]


def test_a_link_the_sync_made_is_left_alone() -> None:
    order, _ = ct_order()
    uid = study_instance_uid(order, site_mapping())
    ehr = Ehr([order], _study(uid, "Patient/p-1",
                              based_on=[{"reference": "ServiceRequest/sr-1"}]))
    assert _run(ehr, uid) == {"linked": "ServiceRequest/sr-1", "by": "sync"}
    assert ehr.puts == []


def test_without_a_matching_accession_the_scheduled_order_is_found_by_uid() -> None:
    order, patient = ct_order()
    book = OrderBook(site_mapping())
    book.apply([order, patient])
    uid = study_instance_uid(order, site_mapping())
    ehr = Ehr([order], _study(uid, "Patient/p-1", accession="TYPED-WRONG"))
    assert _run(ehr, uid, book)["linked"] == "ServiceRequest/sr-1"
    assert _run(Ehr([order], _study("2.25.99", "Patient/p-1")), "2.25.99", book) == {
        "linked": None, "reason": "no order has this Study Instance UID"}


def test_a_study_not_written_yet_waits() -> None:
    with pytest.raises(StudyNotWritten):
        _run(Ehr([], None), "2.25.1")
