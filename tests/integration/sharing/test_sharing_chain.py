"""The sharing chain against the real servers (issue 14): a study stored at site A is
synced, its follow-up publishes the manifest (STOW-RS into site A's Orthanc, ITI-65 to
the registry), and site B finds it (ITI-67) and reads it (ITI-68); a new series
republishes and supersedes; an excluded modality publishes nothing; the registry down
makes the publication wait, not fail, and a bundle the registry refuses is a dead letter
naming the field.

Site A is the shared Orthanc and HAPI with a SQLite state store of the test's own; the
registry is the shared HAPI, the patient filed under an affinity-domain identifier system
of the test's own (see sharing_sites)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.archive.client import DicomwebClient
from bridge.config import FhirSettings
from bridge.fhir.client import FhirClient
from bridge.sharing import source_registry
from bridge.sharing.consumer import DocumentConsumer
from bridge.sharing.inputs import digest_of_instances, read_inputs
from bridge.sharing.publish import ProvideOutcome, provide
from bridge.sharing.uids import manifest_series_uid
from tests.integration.sharing.sharing_sites import (
    GATEWAY_A,
    add_series,
    affinity_system,
    delete_series,
    document_ids,
    load_study,
    register_patient,
    site_a_settings,
    study_references,
    sync_and_publish,
)
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration


async def site_b_reads(hapi: Any, identifier: dict[str, str]) -> tuple[Any, Any]:
    """Site B: ITI-67 for the patient, then ITI-68 and the KOS read of the one document."""
    async with DocumentConsumer(FhirSettings(base_url=hapi.fhir_url)) as consumer:
        found = await consumer.find(identifier)
        assert found.problems == ()
        [document] = found.documents
        return document, await consumer.manifest(document)


async def test_a_synced_study_is_published_found_by_site_b_and_replaced_by_a_new_series(
        orthanc: Any, hapi: Any, ns: Any, tmp_path: Path) -> None:
    study = load_study(orthanc, hapi, ns)
    identifier = register_patient(hapi, ns, study)
    settings = site_a_settings(orthanc, hapi, tmp_path, ns)

    task = await sync_and_publish(settings, study.study_uid)
    assert task is not None and task.status == "done", task
    assert task.result is not None and task.result["shared"] and task.result["registered"]

    # the re-sync the stored KOS causes ends at the publisher's step 0 only if Orthanc's
    # QIDO-RS records digest like its WADO-RS metadata (the KOS now in the study)
    async with DicomwebClient(settings.archives[0]) as archive:
        own = manifest_series_uid(study.study_uid)
        assert await read_inputs(archive, study.study_uid, own_series=own, salt="s") == \
            digest_of_instances(await archive.study_instances(study.study_uid),
                                own_series=own, salt="s")

    document, manifest = await site_b_reads(hapi, identifier)
    assert document.study_uid == study.study_uid
    assert document.source == "Hospital A imaging (example)"  # the policy's source.name
    assert f"DocumentReference/{document.id}" == task.result["document"]
    assert set(manifest.references()) == study_references(orthanc, study.study_uid)
    assert {s.retrieve_url for s in manifest.series} == {
        f"{GATEWAY_A}/studies/{study.study_uid}"}

    # a new series at site A: the next sync's follow-up republishes, superseding
    new_series, new_sop = add_series(orthanc, study)
    again = await sync_and_publish(settings, study.study_uid)
    assert again is not None and again.status == "done" and again.result is not None
    assert again.result["superseded"] == [task.result["document"]]
    replaced, manifest2 = await site_b_reads(hapi, identifier)
    assert replaced.id != document.id
    assert new_sop in {ref[2] for ref in manifest2.references()}
    assert set(manifest2.references()) == study_references(orthanc, study.study_uid)
    assert document_ids(hapi, identifier, "superseded") == [document.id]

    # the new series deleted again: the first manifest describes the study again, and it
    # is made current again (its masterIdentifier cannot be registered a second time)
    delete_series(orthanc, new_series)
    back = await sync_and_publish(settings, study.study_uid)
    assert back is not None and back.status == "done" and back.result is not None
    assert back.result["document"] == task.result["document"]
    again_first, manifest3 = await site_b_reads(hapi, identifier)
    assert again_first.id == document.id
    assert set(manifest3.references()) == set(manifest.references())
    assert document_ids(hapi, identifier, "superseded") == [replaced.id]


async def test_an_excluded_modality_publishes_nothing(
        orthanc: Any, hapi: Any, ns: Any, tmp_path: Path) -> None:
    study = load_study(orthanc, hapi, ns)
    identifier = register_patient(hapi, ns, study)
    settings = site_a_settings(orthanc, hapi, tmp_path, ns,
                               exclude_modalities=list(study.truth.modalities))

    task = await sync_and_publish(settings, study.study_uid)
    assert task is not None and task.status == "done" and task.result is not None
    assert not task.result["shared"]
    assert task.result["reason"].startswith("excluded-modality:")
    assert document_ids(hapi, identifier, "current") == []
    assert study_references(orthanc, study.study_uid, skip_modality="") == \
        study_references(orthanc, study.study_uid)  # no manifest stored


async def test_the_registry_down_makes_the_publication_wait_then_it_is_published(
        orthanc: Any, hapi: Any, ns: Any, tmp_path: Path) -> None:
    study = load_study(orthanc, hapi, ns)
    identifier = register_patient(hapi, ns, study)
    url = httpx.URL(hapi.fhir_url)
    with TcpProxy(url.host, url.port or 80) as proxy:
        registry = f"{proxy.url}{url.path}"
        settings = site_a_settings(orthanc, hapi, tmp_path, ns, registry_url=registry)
        proxy.cut()
        task = await sync_and_publish(settings, study.study_uid)
        assert task is not None and task.status == "due", task
        assert task.attempts == 0 and "fhir-unavailable" in (task.last_error or "")

        proxy.restore()
        task = await sync_and_publish(settings, study.study_uid, until_done=True)
    assert task is not None and task.status == "done", task
    assert len(document_ids(hapi, identifier, "current")) == 1


async def test_a_bundle_the_registry_refuses_is_a_dead_letter_naming_the_field(
        orthanc: Any, hapi: Any, ns: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    study = load_study(orthanc, hapi, ns)
    register_patient(hapi, ns, study)
    settings = site_a_settings(orthanc, hapi, tmp_path, ns)

    async def corrupted(fhir: FhirClient, bundle: dict[str, Any]) -> ProvideOutcome:
        # the bundle damaged on its way: the real registry answers the real refusal
        bundle["entry"][1]["resource"]["date"] = "yesterday"
        return await provide(fhir, bundle)

    monkeypatch.setattr(source_registry, "provide", corrupted)
    task = await sync_and_publish(settings, study.study_uid)
    assert task is not None and task.status == "failed", task
    assert task.attempts == 1
    assert (task.last_error or "").startswith(
        "registry-rejected: the document registry refused the ITI-65 bundle at date: "
        "FHIR server answered 400"), task.last_error


async def test_with_register_patients_the_registry_patient_is_created_once(
        orthanc: Any, hapi: Any, ns: Any, tmp_path: Path) -> None:
    study = load_study(orthanc, hapi, ns)  # its patient is not in the registry
    settings = site_a_settings(orthanc, hapi, tmp_path, ns, register_patients=True)
    task = await sync_and_publish(settings, study.study_uid)
    assert task is not None and task.status == "done", task
    assert task.result is not None and task.result["registered"]

    identifier = {"system": affinity_system(ns, study.truth.patient_issuer),
                  "value": study.truth.patient_id}
    query = f"{identifier['system']}|{identifier['value']}"
    found = httpx.get(f"{hapi.fhir_url}/Patient", params={"identifier": query},
                      headers={"Cache-Control": "no-cache"}, timeout=60).json()
    [patient] = [e["resource"] for e in found["entry"]]
    assert patient["identifier"] == [identifier] and "name" not in patient
    assert task.result["patient"] == f"Patient/{patient['id']}"
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as fhir:
        # the conditional create finds it rather than making a second one
        again = await source_registry.SourceRegistry(fhir)._create_patient(identifier)
    assert again == f"Patient/{patient['id']}"
    assert document_ids(hapi, identifier, "current") == [task.result["document"].split("/")[1]]
