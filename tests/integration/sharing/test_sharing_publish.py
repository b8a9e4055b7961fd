"""The Imaging Document Source against the real servers: the ITI-65 bundle registered by
the shared HAPI (as MHD Document Recipient and Responder), found by ITI-67, its KOS
retrieved by ITI-68, never registered twice, replaced, and valid by HAPI's $validate;
the KOS stored into the shared Orthanc by STOW-RS and read back.

Each test publishes a study of its own (generator id prefix from the test's namespace)
for a patient of its own, and looks only at those."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pydicom.dataset import Dataset

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings, FhirSettings
from bridge.fhir.client import FhirClient
from bridge.sharing.identity import affinity_identifier
from bridge.sharing.kos import KOS_SOP_CLASS, manifest_json, manifest_part10, referenced
from bridge.sharing.loader import load_sharing_policy
from bridge.sharing.mhd import provide_bundle, replace_bundle
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.publish import ManifestStore, provide
from bridge.sharing.study import read_study
from samples.generator import GeneratedStudy, generate_studies

pytestmark = pytest.mark.integration

GATEWAY = "https://site-a.example.org/dicom-web"
CREATED = dt.datetime(2026, 12, 8, 1, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def policy() -> SharingPolicy:
    return load_sharing_policy()


@pytest_asyncio.fixture(loop_scope="function")
async def registry(hapi: Any) -> AsyncIterator[FhirClient]:
    # $validate loads HAPI's terminology on first use: allow it minutes on a busy machine
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url, timeout=300.0)) as client:
        yield client


def archive_settings(orthanc: Any) -> ArchiveSettings:
    return ArchiveSettings(name="site-a", base_url=orthanc.dicomweb_url,
                           auth={"kind": "basic", "username": orthanc.username,
                                 "password": orthanc.password})


def study_of(ns: Any) -> GeneratedStudy:
    """The test's own study, with IDs prefixed by the namespace (so its UIDs and its
    patient are the test's alone).  Profile ``typical``: whatever the prefix draws, four
    series of 25 instances (a ``small`` study may have one instance only)."""
    [study] = generate_studies(1, seed=7, profile="typical", id_prefix=ns.token[:6])
    assert study.truth.instance_count == 100
    return study


async def register_patient(registry: FhirClient, policy: SharingPolicy,
                           instances: list[dict[str, Any]]) -> dict[str, str]:
    """The study's patient in the affinity domain, registered with the registry (the
    bundle's subject refers to it by identifier); returns its identifier."""
    identifier = affinity_identifier(policy.affinity_domain, read_study(instances))
    await registry.request("POST", "Patient", interaction="create", json={
        "resourceType": "Patient", "identifier": [identifier]})
    return identifier


async def current_documents(registry: FhirClient, identifier: dict[str, str]
                            ) -> list[dict[str, Any]]:
    """ITI-67 Find Document References (patient.identifier, status=current)."""
    params = {"patient.identifier": f"{identifier['system']}|{identifier['value']}",
              "status": "current"}
    return [r async for r in registry.search_all("DocumentReference", params)]


def bundle_for(instances: list[dict[str, Any]], policy: SharingPolicy, registry: FhirClient
               ) -> tuple[dict[str, Any], bytes]:
    manifest = manifest_json(instances, policy=policy, wado_rs_base=GATEWAY, created=CREATED)
    part10 = manifest_part10(manifest)
    bundle = provide_bundle(manifest, part10, read_study(instances), policy=policy,
                            registry_url=registry.base_url, created=CREATED)
    return bundle, part10


async def test_a_published_manifest_is_found_retrieved_and_registered_once(
    registry: FhirClient, policy: SharingPolicy, ns: Any
) -> None:
    instances = study_of(ns).to_dicom_json()
    patient = await register_patient(registry, policy, instances)
    bundle, part10 = bundle_for(instances, policy, registry)

    first = await provide(registry, bundle)
    again = await provide(registry, bundle)  # a retried publication
    assert (first.created, again.created) == (True, False)
    assert again.document_reference.split("/")[:2] == first.document_reference.split("/")[:2]

    [document] = await current_documents(registry, patient)
    master = bundle["entry"][1]["resource"]["masterIdentifier"]
    assert document["masterIdentifier"] == master
    by_master = await registry.search(
        "DocumentReference", {"identifier": f"{master['system']}|{master['value']}"})
    assert by_master["total"] == 1
    lists = await registry.search("List", {"item": f"DocumentReference/{document['id']}"})
    assert lists["total"] == 1

    # ITI-68 Retrieve Document: GET the attachment URL
    url = document["content"][0]["attachment"]["url"]
    resp = await registry.request("GET", url, interaction="mhd-retrieve",
                                  headers={"Accept": "application/dicom"})
    assert resp.headers["content-type"].startswith("application/dicom")
    assert resp.content == part10


async def test_the_stored_document_reference_validates_on_hapi(
    registry: FhirClient, policy: SharingPolicy, ns: Any
) -> None:
    instances = study_of(ns).to_dicom_json()
    await register_patient(registry, policy, instances)
    outcome = await provide(registry, bundle_for(instances, policy, registry)[0])
    stored = await registry.read("DocumentReference", outcome.document_reference.split("/")[1])
    resp = await registry.request("POST", "DocumentReference/$validate", json=stored,
                                  interaction="validate")
    issues = resp.json().get("issue", [])
    errors = [i for i in issues if i.get("severity") in ("error", "fatal")]
    assert errors == [], errors


async def test_a_replacement_supersedes_the_first_manifest(
    registry: FhirClient, policy: SharingPolicy, ns: Any
) -> None:
    instances = study_of(ns).to_dicom_json()
    patient = await register_patient(registry, policy, instances)
    first_bundle, _ = bundle_for(instances[:-1], policy, registry)
    first = await provide(registry, first_bundle)
    old = await registry.read("DocumentReference", first.document_reference.split("/")[1])

    # the study gained an instance: a new manifest replaces the first
    second_bundle, _ = bundle_for(instances, policy, registry)
    second = await provide(registry, replace_bundle(second_bundle, old))
    assert second.created

    [current] = await current_documents(registry, patient)
    assert current["id"] == second.document_reference.split("/")[1]
    assert current["relatesTo"] == [{"code": "replaces",
                                     "target": {"reference": f"DocumentReference/{old['id']}"}}]
    assert (await registry.read("DocumentReference", old["id"]))["status"] == "superseded"


async def test_the_manifest_is_stored_in_the_archive_and_read_back(
    orthanc: Any, policy: SharingPolicy, ns: Any
) -> None:
    study = study_of(ns)
    settings = archive_settings(orthanc)
    manifest = manifest_json(study.to_dicom_json(), policy=policy, wado_rs_base=GATEWAY,
                             created=CREATED)
    uid = manifest["00080018"]["Value"][0]
    async with ManifestStore(settings) as store:
        for part10 in study.part10():
            await store.store(part10)
        await store.store(manifest_part10(manifest))
        await store.store(manifest_part10(manifest))  # a retry: already stored, no error

    async with DicomwebClient(settings) as archive:
        stored = await archive.study_instances(study.study_uid)
    kos = [i for i in stored if i["00080016"]["Value"] == [KOS_SOP_CLASS]]
    assert [i["00080018"]["Value"] for i in kos] == [[uid]]
    assert len(stored) == study.truth.instance_count + 1
    # the archive's copy says what was sent: the evidence, every series' Retrieve URL
    assert referenced(Dataset.from_json(kos[0])) == referenced(Dataset.from_json(manifest))
    # built again from what the archive now holds (the manifest included), the study's
    # manifest is the same one: a manifest never references itself
    rebuilt = manifest_json(stored, policy=policy, wado_rs_base=GATEWAY, created=CREATED)
    assert rebuilt["00080018"]["Value"] == [uid]
    assert rebuilt["0040A375"] == manifest["0040A375"]
