"""Delete policy ``delete`` with the record room on (issues 5 and 16) against the real HAPI,
which enforces referential integrity on delete: our ImagingStudy goes together with the
report and dose resources this bridge derived from it; a resource someone else wrote that
references it stops the delete (nothing of theirs is removed)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from bridge.config import DeletePolicy, FhirSettings
from bridge.errors import Conflict
from bridge.fhir.client import FhirClient
from bridge.sync.assemble import BRIDGE_TAG
from bridge.sync.deletes import apply_policy


def _put(client: httpx.Client, fhir: str, resource: dict[str, Any]) -> str:
    resp = client.post(f"{fhir}/{resource['resourceType']}", json=resource)
    assert resp.status_code == 201, resp.text
    return f"{resource['resourceType']}/{resp.json()['id']}"


def _world(fhir: str, *, foreign: bool) -> dict[str, Any]:
    """A patient, our ImagingStudy, our report and dose Observation of it, and optionally
    the EHR's own Observation referencing it."""
    tag = {"meta": {"tag": [BRIDGE_TAG]}}
    uid = f"2.25.{uuid.uuid4().int}"
    with httpx.Client(timeout=60) as client:
        patient = _put(client, fhir, {"resourceType": "Patient",
                                      "identifier": [{"system": "urn:test", "value": uid}]})
        study = _put(client, fhir, {
            "resourceType": "ImagingStudy", **tag, "status": "available",
            "subject": {"reference": patient},
            "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}]})
        report = _put(client, fhir, {
            "resourceType": "DiagnosticReport", **tag, "status": "final",
            "code": {"text": "CT report"}, "subject": {"reference": patient},
            "imagingStudy": [{"reference": study}]})
        dose = _put(client, fhir, {
            "resourceType": "Observation", **tag, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "73569-6"}]},
            "subject": {"reference": patient}, "partOf": [{"reference": study}]})
        theirs = _put(client, fhir, {
            "resourceType": "Observation", "status": "final", "code": {"text": "note"},
            "subject": {"reference": patient}, "partOf": [{"reference": study}]}) \
            if foreign else None
        # the premise: the server refuses to delete a referenced ImagingStudy on its own
        refused = client.delete(f"{fhir}/{study}")
        assert refused.status_code == 409, refused.text
    return {"uid": uid, "study": study, "report": report, "dose": dose, "theirs": theirs}


def _status(fhir: str, ref: str) -> int:
    return httpx.get(f"{fhir}/{ref}", headers={"Cache-Control": "no-cache"},
                     timeout=30).status_code


async def test_the_study_goes_with_the_report_and_dose_derived_from_it(hapi: Any) -> None:
    world = _world(hapi.fhir_url, foreign=False)
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as fhir:
        outcome = await apply_policy(fhir, world["uid"], policy=DeletePolicy.DELETE)
    assert sorted(outcome.derived) == sorted([world["report"], world["dose"]])
    for ref in ("study", "report", "dose"):
        assert _status(hapi.fhir_url, world[ref]) == 410, ref  # deleted (R4: 410 Gone)


async def test_someone_elses_reference_stops_the_delete_and_nothing_is_removed(
        hapi: Any) -> None:
    world = _world(hapi.fhir_url, foreign=True)
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as fhir:
        # 409: retried a few times (the reference may go), then a dead letter to look at
        with pytest.raises(Conflict):
            await apply_policy(fhir, world["uid"], policy=DeletePolicy.DELETE)
    for ref in ("study", "report", "dose", "theirs"):
        assert _status(hapi.fhir_url, world[ref]) == 200, ref
