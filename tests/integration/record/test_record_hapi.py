"""The record mappings' resources are accepted by a real FHIR R4 server (HAPI FHIR JPA).

For generated CT and radiography studies (unique per test through ``id_prefix``), the Patient
and the ImagingStudy made by the real mapping engine are created first; then the dose SR's
Observations and the reports' DiagnosticReports (text SR, encapsulated PDF), referencing
them, go to ``$validate`` (no error or fatal issue allowed) and are created.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "mapping"))

from mapping_helpers import ENDPOINT, site_engine

from bridge.record.dose import map_dose_sr
from bridge.record.pdf_report import map_pdf_report
from bridge.record.report import map_report_sr
from samples.generator import generate_studies
from samples.rdsr import dose_sr
from samples.report_pdf import pdf_report
from samples.report_sr import text_report_sr
from tests.support.hapi_validation import validate_and_create

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def test_dose_observations_and_reports_are_accepted_by_hapi(hapi: Any, ns: Namespace) -> None:
    engine = site_engine()
    # the generator's draws depend on the id prefix: look far enough for a CT and a CR
    studies = list(generate_studies(200, seed=16, profile="small", id_prefix=ns.token[:6]))
    chosen = [next(s for s in studies if "CT" in s.truth.modalities),
              next(s for s in studies if "CR" in s.truth.modalities)]
    patients: list[str] = []
    with httpx.Client(base_url=hapi.fhir_url, headers=FHIR_JSON, timeout=60) as client:
        for study in chosen:
            label = f"{study.truth.modalities[0]} {study.study_uid}"
            result = engine.map_study(study.to_dicom_json(), endpoint=ENDPOINT)
            patient = {"reference": validate_and_create(client, result.patient.resource(), label)}
            patients.append(patient["reference"])
            imaging_study = {**result.imaging_study, "subject": patient}
            study_ref = {"reference": validate_and_create(client, imaging_study, label)}
            made = dose_sr(study.truth, seed=1)
            assert made is not None
            dose = map_dose_sr(made[0].to_json_dict(), imaging_study=study_ref,
                               patient=patient)
            assert dose.warnings == ()
            for observation in dose.resources:
                validate_and_create(client, observation, label)
            for verified in (True, False):
                report = map_report_sr(
                    text_report_sr(study.truth, seed=1, verified=verified)[0].to_json_dict(),
                    imaging_study=study_ref, patient=patient)
                validate_and_create(client, report.resources[0], label)
            pdf = map_pdf_report(pdf_report(study.truth, seed=1)[0].to_json_dict(),
                                 imaging_study=study_ref, patient=patient)
            validate_and_create(client, pdf.resources[0], label)
        # one dose summary per patient's study, found by the IG's summary code
        for reference in patients:
            found = client.get("Observation", params={
                "subject": reference, "code": "http://loinc.org|73569-6"})
            assert found.status_code == 200
            assert len(found.json().get("entry", [])) == 1
