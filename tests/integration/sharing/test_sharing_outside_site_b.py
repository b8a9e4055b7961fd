"""Site B's view of the outside studies against the real registry (issue 14): a study
site A published is found for site B's own patient, whose EHR identifier (another
hospital's MRN) maps through the issuer maps to the affinity-domain identifier the
registry's Patient also carries; a current manifest site B cannot read is named with its
field, by the look-up and by ``imaging-bridge sharing outside``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bridge.cli import app
from bridge.config import FhirSettings
from bridge.sharing.loader import load_sharing_policy
from bridge.sharing.mhd import DCMUID
from bridge.sharing.outside import OutsideImaging
from tests.integration.sharing.sharing_sites import (
    affinity_system,
    load_study,
    site_a_settings,
    sync_and_publish,
)

pytestmark = pytest.mark.integration

EHR_B = "https://hospital-b.example.org/fhir/sid/mrn"  # site B's EHR MRN system


def register_both(hapi: Any, ns: Any, study: Any) -> tuple[str, dict[str, str]]:
    """The registry's Patient with site A's and site B's affinity identifiers (what a
    health network's patient identity feed leaves there); its id and B's identifier."""
    b_mrn = {"system": affinity_system(ns, "HOSP_B"), "value": f"B-{ns.token}"}
    a_mrn = {"system": affinity_system(ns, study.truth.patient_issuer),
             "value": study.truth.patient_id}
    resp = httpx.post(f"{hapi.fhir_url}/Patient", timeout=60,
                      json={"resourceType": "Patient", "identifier": [a_mrn, b_mrn]})
    resp.raise_for_status()
    return str(resp.json()["id"]), b_mrn


def unreadable_manifest(hapi: Any, patient_id: str) -> str:
    """A current KOS DocumentReference without the Study Instance UID."""
    resp = httpx.post(f"{hapi.fhir_url}/DocumentReference", timeout=60, json={
        "resourceType": "DocumentReference", "status": "current",
        "subject": {"reference": f"Patient/{patient_id}"},
        "content": [{"attachment": {"contentType": "application/dicom",
                                    "url": f"{hapi.fhir_url}/Binary/nothing"},
                     "format": {"system": DCMUID,
                                "code": "1.2.840.10008.5.1.4.1.1.88.59"}}]})
    resp.raise_for_status()
    return str(resp.json()["id"])


async def test_site_b_finds_the_outside_study_by_its_own_patients_identifier(
        orthanc: Any, hapi: Any, ns: Any, tmp_path: Path) -> None:
    study = load_study(orthanc, hapi, ns)
    patient_id, b_mrn = register_both(hapi, ns, study)
    settings = site_a_settings(orthanc, hapi, tmp_path, ns)
    task = await sync_and_publish(settings, study.study_uid)
    assert task is not None and task.status == "done", task
    broken = unreadable_manifest(hapi, patient_id)

    policy = load_sharing_policy(settings.sharing.policy_file)
    site_b = OutsideImaging(FhirSettings(base_url=hapi.fhir_url),
                            local_systems={"HOSP_B": EHR_B}, domain=policy.affinity_domain)
    found = await site_b.for_patient([{"system": EHR_B, "value": b_mrn["value"]},
                                      {"system": "urn:other", "value": "ignored"}])
    assert found.asked == 1
    [outside] = found.studies
    assert (outside.study_uid, outside.source) == (study.study_uid,
                                                   "Hospital A imaging (example)")
    [problem] = found.problems
    assert (problem.document, problem.field) == (broken, "context.related")

    config = tmp_path / "site-b.yaml"
    config.write_text(json.dumps({
        "archives": [{"name": "b", "base_url": "http://127.0.0.1:9/dicom-web"}],
        "fhir": {"base_url": "http://127.0.0.1:9/fhir"},
        "state": {"url": f"sqlite:///{tmp_path / 'b.db'}"},
        "sharing": {"enabled": True, "registry": {"base_url": hapi.fhir_url}}}))
    result = await asyncio.to_thread(  # the command runs its own event loop
        CliRunner().invoke, app, ["sharing", "outside", "--patient",
                                  f"{b_mrn['system']}|{b_mrn['value']}", "--config",
                                  str(config)])
    assert result.exit_code == 0, result.output
    assert "1 outside studies, 1 documents could not be read" in result.output
    assert f"study {study.study_uid}" in result.output
    assert "source Hospital A imaging (example)" in result.output
    assert f"could not be read: DocumentReference/{broken}: context.related" in result.output
