"""The source's registry client: its reads and the refusals of ITI-65 named by field
(in-process fakes: httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bridge.config import FhirSettings
from bridge.errors import Conflict, FhirBusy, PatientNotFound
from bridge.fhir.client import FhirClient
from bridge.sharing.errors import RegistryRejected
from bridge.sharing.source_registry import SourceRegistry, rejected_field
from tests.unit.sharing.mhd_cases import bundle_of

Handler = Callable[[httpx.Request], httpx.Response]
IDENTIFIER = {"system": "https://net.example.org/sid/a", "value": "MRN-1"}
STUDY = "1.2.3.4"


def registry(handler: Handler) -> SourceRegistry:
    return SourceRegistry(FhirClient(FhirSettings(base_url="http://registry.test/fhir"),
                                     transport=httpx.MockTransport(handler)))


def outcome(**issue: Any) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "processing", **issue}]}


@pytest.mark.parametrize(("answer", "field"), [
    (outcome(expression=["DocumentReference.type"], location=["/f:x"]), "DocumentReference.type"),
    (outcome(location=["Bundle.entry[1].resource.date"]), "Bundle.entry[1].resource.date"),
    (outcome(diagnostics='HAPI-1821: [element="date"] Invalid attribute value "x"'), "date"),
    (outcome(diagnostics="HAPI-0000: something else"), None),
    (None, None),
])
def test_the_rejected_field_is_read_from_the_operation_outcome(
        answer: dict[str, Any] | None, field: str | None) -> None:
    assert rejected_field(answer) == field


async def test_a_refused_bundle_names_the_field_and_a_conflict_stays_retryable() -> None:
    body = outcome(diagnostics='HAPI-1821: [element="date"] Invalid attribute value "x"')
    with pytest.raises(RegistryRejected) as caught:
        await registry(lambda _: httpx.Response(400, json=body)).provide(bundle_of())
    assert caught.value.field == "date" and caught.value.status_code == 400
    assert "refused the ITI-65 bundle at date" in caught.value.message

    with pytest.raises(Conflict):
        await registry(lambda _: httpx.Response(412, json=outcome())).provide(bundle_of())
    with pytest.raises(FhirBusy):
        await registry(lambda _: httpx.Response(503)).provide(bundle_of())


async def test_no_patient_in_the_registry_is_a_wait_not_naming_the_patient() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})

    with pytest.raises(PatientNotFound) as caught:
        await registry(handler).patient(IDENTIFIER)
    assert "MRN-1" not in caught.value.message
    assert seen[0].url.params["identifier"] == "https://net.example.org/sid/a|MRN-1"
    assert seen[0].headers["cache-control"] == "no-cache"


async def test_current_manifests_are_those_of_the_study_asked_without_the_search_cache(
) -> None:
    def doc(doc_id: str, study: str) -> dict[str, Any]:
        return {"resource": {"resourceType": "DocumentReference", "id": doc_id, "context": {
            "related": [{"identifier": {"system": "urn:dicom:uid",
                                        "value": f"urn:oid:{study}"}}]}}}

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset",
                                         "entry": [doc("a", STUDY), doc("b", "1.2.3.5")]})

    found = await registry(handler).current_manifests("Patient/7", STUDY)
    assert [d["id"] for d in found] == ["a"]
    params = seen[0].url.params
    assert (params["subject"], params["status"]) == ("Patient/7", "current")
    assert seen[0].headers["cache-control"] == "no-cache"


async def test_a_missing_patient_is_created_conditionally_when_asked() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})
        return httpx.Response(201, headers={
            "Location": "http://registry.test/fhir/Patient/42/_history/1"})

    assert await registry(handler).patient(IDENTIFIER, create=True) == "Patient/42"
    search, create = seen
    assert search.method == "GET"
    assert create.method == "POST" and create.url.path == "/fhir/Patient"
    assert create.headers["if-none-exist"] == "identifier=https://net.example.org/sid/a|MRN-1"
    assert json.loads(create.content) == {"resourceType": "Patient",
                                          "identifier": [IDENTIFIER]}
