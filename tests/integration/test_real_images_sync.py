"""Real images (samples.real_images) through the archive and the sync (issue 13): Orthanc
keeps each file's transfer syntax, and each becomes one ImagingStudy of the synthetic
patient it was assigned to, with the file's modality, SOP Class, frames and body site."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx

from samples.generator import generate_studies
from samples.load import load_studies
from samples.real_images import real_studies
from samples.seed_ehr import seed_ehr
from tests.integration.sync_helpers import bridge_settings, fhir_search, study_by_uid
from tests.support.wiring import sync_context

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SNOMED = "http://snomed.info/sct"


def test_each_real_image_is_stored_as_is_and_synced_as_its_patients_imaging_study(
    orthanc: Any, hapi: Any, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex[:5].upper()
    seed = int(token, 16)
    synthetic = list(generate_studies(2, seed=seed, profile="small", patients=2,
                                      id_prefix=token, every_patient=True))
    studies = real_studies([s.patient for s in synthetic], seed=seed, id_prefix=token)
    loaded = load_studies([*synthetic, *studies], url=orthanc.dicomweb_url,
                          username=orthanc.username, password=orthanc.password)
    assert loaded.ok, loaded.errors
    seed_ehr([s.truth for s in [*synthetic, *studies]], fhir_url=hapi.fhir_url,
             patients_fraction=1.0, seed=seed)

    # the archive keeps the transfer syntax the file was stored in
    with httpx.Client(timeout=60, auth=(orthanc.username, orthanc.password)) as client:
        for study in studies:
            found = client.post(f"{orthanc.base_url}/tools/lookup", content=study.study_uid)
            orthanc_id = next(f["ID"] for f in found.json() if f["Type"] == "Study")
            (instance,) = client.get(f"{orthanc.base_url}/studies/{orthanc_id}/instances").json()
            syntax = client.get(f"{orthanc.base_url}/instances/{instance['ID']}/metadata/"
                                "TransferSyntax").text
            assert syntax == study.transfer_syntax, study.source.key

    settings = bridge_settings(orthanc, hapi, tmp_path)

    async def sync() -> Any:
        async with sync_context(settings) as ctx:
            ctx.store.mark_many_due("orthanc", [(s.study_uid, None) for s in studies],
                                    reason="manual")
            return await ctx.runner.drain()

    stats = asyncio.run(sync())
    assert stats.failed == stats.retried == 0
    for study in studies:
        truth, key = study.truth, study.source.key
        (resource,) = study_by_uid(hapi, study.study_uid)
        (patient,) = fhir_search(hapi, "Patient",
                                 {"identifier": f"{truth.patient_system}|{truth.patient_id}"})
        assert resource["subject"]["reference"] == f"Patient/{patient['id']}", key
        assert [m["code"] for m in resource["modality"]] == [study.source.modality], key
        assert resource["numberOfSeries"] == resource["numberOfInstances"] == 1, key
        (series,) = resource["series"]
        assert series["modality"] == {**series["modality"], "system": DCM,
                                      "code": study.source.modality}, key
        (instance,) = series["instance"]
        assert instance["sopClass"]["code"] == f"urn:oid:{truth.series[0].sop_class_uid}", key
        accession = [i["value"] for i in resource["identifier"]
                     if i.get("type", {}).get("coding", [{}])[0].get("code") == "ACSN"]
        assert accession == [truth.accession_number], key
        if study.source.body_part is not None:
            assert series["bodySite"]["system"] == SNOMED, key
