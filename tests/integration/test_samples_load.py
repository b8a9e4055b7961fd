"""Integration: STOW generated studies into the real Orthanc and QIDO them back; seed the
real HAPI FHIR server with their Patients and ServiceRequests and search them.

Every test derives its seed and ID prefix from ``ns`` so its UIDs, patient IDs and accession
numbers never collide with other tests sharing the same servers.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from samples.generator import GeneratedStudy, StudyTruth, generate_studies
from samples.load import load_studies, make_client, verify_studies
from samples.seed_ehr import seed_ehr

NO_CACHE = {"Cache-Control": "no-cache"}  # HAPI may reuse cached search results otherwise


def _studies(ns: Any, count: int, **kwargs: Any) -> list[GeneratedStudy]:
    """Studies unique to this test: seed and ID prefix come from the namespace token."""
    return list(generate_studies(count, seed=int(ns.token, 16), id_prefix=ns.token[:6], **kwargs))


def _value(doc: dict[str, Any], tag: str) -> Any:
    return doc.get(tag, {}).get("Value", [None])[0]


def test_load_and_qido_back(orthanc: Any, ns: Any) -> None:
    studies = _studies(ns, 5)
    truths = [s.truth for s in studies]
    expected_instances = sum(t.instance_count for t in truths)

    result = load_studies(
        studies,
        url=orthanc.dicomweb_url,
        username=orthanc.username,
        password=orthanc.password,
        parallelism=3,
        chunk_size=10,  # big studies go in several STOW requests
    )
    assert result.ok, result.errors
    assert result.studies == 5
    assert result.stored_instances == result.instances == expected_instances
    assert result.requests >= 5
    assert result.studies_per_second > 0

    client = make_client(orthanc.dicomweb_url, username=orthanc.username, password=orthanc.password)
    for truth in truths:
        found = client.search_for_studies(
            search_filters={"StudyInstanceUID": truth.study_uid},
            fields=[
                "NumberOfStudyRelatedSeries",
                "NumberOfStudyRelatedInstances",
                "IssuerOfPatientID",
            ],
        )
        assert len(found) == 1
        doc = found[0]
        assert int(_value(doc, "00201206")) == truth.series_count
        assert int(_value(doc, "00201208")) == truth.instance_count
        assert _value(doc, "00080050") == truth.accession_number
        assert _value(doc, "00100020") == truth.patient_id
        assert _value(doc, "00100010")["Alphabetic"] == truth.patient_name.split("=")[0]

        series = client.search_for_series(truth.study_uid)
        assert sorted(_value(s, "0020000E") for s in series) == sorted(
            s.series_uid for s in truth.series
        )
        assert Counter(_value(s, "00080060") for s in series) == Counter(
            s.modality for s in truth.series
        )

    # studies of one patient are found by PatientID (IDs are unique to this test)
    by_patient = Counter(t.patient_id for t in truths)
    patient_id, n = by_patient.most_common(1)[0]
    assert len(client.search_for_studies(search_filters={"PatientID": patient_id})) == n

    assert (
        verify_studies(
            truths,
            url=orthanc.dicomweb_url,
            username=orthanc.username,
            password=orthanc.password,
        )
        == []
    )


def test_load_with_public_store_instances(orthanc: Any, ns: Any) -> None:
    studies = _studies(ns, 2, profile="small")
    result = load_studies(
        studies,
        url=orthanc.dicomweb_url,
        username=orthanc.username,
        password=orthanc.password,
        mode="datasets",
    )
    assert result.ok, result.errors
    assert (
        verify_studies(
            [s.truth for s in studies],
            url=orthanc.dicomweb_url,
            username=orthanc.username,
            password=orthanc.password,
        )
        == []
    )


def test_load_wrong_password_is_reported(orthanc: Any, ns: Any) -> None:
    studies = _studies(ns, 1, profile="small")
    result = load_studies(
        studies, url=orthanc.dicomweb_url, username=orthanc.username, password="wrong"
    )
    assert not result.ok
    assert result.failed_studies == 1
    assert "401" in result.errors[0]


def _search(client: httpx.Client, resource: str, system: str, value: str) -> list[dict[str, Any]]:
    response = client.get(resource, params={"identifier": f"{system}|{value}"}, headers=NO_CACHE)
    response.raise_for_status()
    return [e["resource"] for e in response.json().get("entry", [])]


def _patient_checks(client: httpx.Client, truth: StudyTruth) -> str:
    found = _search(client, "Patient", truth.patient_system, truth.patient_id)
    assert len(found) == 1
    patient = found[0]
    assert patient["birthDate"].replace("-", "") == truth.patient_birth_date
    assert patient["name"][0]["family"] == truth.patient_name.split("^")[0]
    return str(patient["id"])


def test_seed_ehr_and_search_by_identifier(hapi: Any, ns: Any) -> None:
    truths = [s.truth for s in _studies(ns, 8, patients=4)]
    result = seed_ehr(truths, fhir_url=hapi.fhir_url)
    assert result.ok, result.errors
    distinct = {(t.patient_issuer, t.patient_id) for t in truths}
    assert result.patients_created == len(distinct)
    assert result.service_requests_created == len(truths)

    with httpx.Client(base_url=hapi.fhir_url.rstrip("/") + "/", timeout=60) as client:
        for truth in truths:
            patient_id = _patient_checks(client, truth)
            orders = _search(
                client, "ServiceRequest", truth.accession_system, truth.accession_number
            )
            assert len(orders) == 1
            order = orders[0]
            assert order["subject"]["reference"] == f"Patient/{patient_id}"
            assert (order["status"], order["intent"]) == ("active", "order")
            types = {i["type"]["coding"][0]["code"] for i in order["identifier"]}
            assert "ACSN" in types
            if truth.placer_order_number:
                assert {"PLAC", "FILL"} <= types

    # conditional create: a second run creates nothing new
    again = seed_ehr(truths, fhir_url=hapi.fhir_url)
    assert again.ok, again.errors
    assert (again.patients_created, again.service_requests_created) == (0, 0)
    assert again.patients_existing == len(distinct)
    assert again.patient_ids == result.patient_ids


def test_seed_ehr_fraction_leaves_patients_out(hapi: Any, ns: Any) -> None:
    truths = [s.truth for s in _studies(ns, 12, patients=6, every_patient=True)]
    result = seed_ehr(truths, fhir_url=hapi.fhir_url, patients_fraction=0.5, seed=int(ns.token, 16))
    assert result.ok, result.errors
    seeded = set(result.patient_ids)
    assert 0 < len(seeded) < result.patients_total
    with httpx.Client(base_url=hapi.fhir_url.rstrip("/") + "/", timeout=60) as client:
        for truth in truths:
            key = (truth.patient_issuer, truth.patient_id)
            found = _search(client, "Patient", truth.patient_system, truth.patient_id)
            assert len(found) == (1 if key in seeded else 0)
            orders = _search(
                client, "ServiceRequest", truth.accession_system, truth.accession_number
            )
            assert len(orders) == (1 if key in seeded else 0)


@pytest.mark.parametrize("name_kind", ["ISO_IR 100", "ISO_IR 192"])
def test_seed_ehr_non_ascii_names(hapi: Any, ns: Any, name_kind: str) -> None:
    truths = [s.truth for s in _studies(ns, 200)]
    truth = next(t for t in truths if t.charset == name_kind)
    result = seed_ehr([truth], fhir_url=hapi.fhir_url)
    assert result.ok, result.errors
    with httpx.Client(base_url=hapi.fhir_url.rstrip("/") + "/", timeout=60) as client:
        patient = _search(client, "Patient", truth.patient_system, truth.patient_id)[0]
    groups = truth.patient_name.split("=")
    assert len(patient["name"]) == len(groups)
    for name, group in zip(patient["name"], groups, strict=True):
        assert name["family"] == group.split("^")[0]
