"""The Imaging Document Consumer against the shared HAPI (as MHD Document Responder): a
manifest published by the source's provide() is found by ITI-67 under the patient's
affinity-domain identifier, with the date and modality filters, retrieved by ITI-68 and
read to the very instance set the source published.

Each test publishes a study of its own (generator id prefix from the test's namespace)
for a patient of its own, and looks only at those."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from bridge.config import FhirSettings
from bridge.fhir.client import FhirClient
from bridge.sharing.consumer import DocumentConsumer
from bridge.sharing.loader import load_sharing_policy
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.publish import provide
from bridge.sharing.study import read_study
from tests.integration.sharing.test_sharing_publish import (
    CREATED,
    GATEWAY,
    bundle_for,
    register_patient,
    study_of,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sharing_policy() -> SharingPolicy:
    return load_sharing_policy()


@pytest_asyncio.fixture(loop_scope="function")
async def source_registry(hapi: Any) -> AsyncIterator[FhirClient]:
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url, timeout=120.0)) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="function")
async def consumer(hapi: Any) -> AsyncIterator[DocumentConsumer]:
    async with DocumentConsumer(FhirSettings(base_url=hapi.fhir_url, timeout=120.0)) as client:
        yield client


async def test_a_published_manifest_is_found_retrieved_and_read_to_the_same_instances(
    source_registry: FhirClient, consumer: DocumentConsumer, sharing_policy: SharingPolicy,
    ns: Any
) -> None:
    instances = study_of(ns).to_dicom_json()
    patient = await register_patient(source_registry, sharing_policy, instances)
    bundle, part10 = bundle_for(instances, sharing_policy, source_registry)
    outcome = await provide(source_registry, bundle)

    found = await consumer.find(patient)
    assert found.problems == ()
    [document] = found.documents
    study = read_study(instances)
    assert document.id == outcome.document_reference.split("/")[1]
    assert document.study_uid == study.study_uid
    assert set(document.modalities) == set(study.modalities)
    assert document.master_identifier == bundle["entry"][1]["resource"]["masterIdentifier"][
        "value"]
    assert (document.mime_type, document.size) == ("application/dicom", len(part10))

    assert await consumer.retrieve(document) == part10
    manifest = await consumer.manifest(document)
    assert manifest.study_uid == study.study_uid
    assert f"urn:oid:{manifest.sop_instance_uid}" == document.master_identifier
    assert sorted(manifest.references()) == sorted(
        (r.series_uid, r.sop_class_uid, r.sop_instance_uid) for r in study.instances)
    assert {s.retrieve_url for s in manifest.series} == {
        f"{GATEWAY}/studies/{study.study_uid}"}


async def test_the_date_and_modality_filters_are_applied_by_the_registry(
    source_registry: FhirClient, consumer: DocumentConsumer, sharing_policy: SharingPolicy,
    ns: Any
) -> None:
    instances = study_of(ns).to_dicom_json()
    patient = await register_patient(source_registry, sharing_policy, instances)
    await provide(source_registry, bundle_for(instances, sharing_policy, source_registry)[0])
    modality = read_study(instances).modalities[0]
    day = CREATED.date()  # the DocumentReference's date

    async def count(**filters: Any) -> int:
        return len((await consumer.find(patient, **filters)).documents)

    assert await count(since=day, until=day, modalities=[modality]) == 1
    assert await count(since=day + dt.timedelta(days=1)) == 0
    assert await count(until=day - dt.timedelta(days=1)) == 0
    absent = "MG" if modality != "MG" else "CT"
    assert await count(modalities=[absent]) == 0
