"""``export --bulk`` against the real HAPI FHIR JPA server's Bulk Data ``$export``.

A generated CT study (unique per test) with its dose SR's Observations and a text report
is created in HAPI; the patient-level export of that patient (``Patient/$export?patient=``,
so other tests' resources on the shared server are not read) is kicked off, polled,
its NDJSON files streamed into the tables and the job deleted.  The tables hold exactly
that study, its series, its report and its dose with the generated DLP total.

HAPI answers every status poll with ``Retry-After: 120`` and advances the job a step per
batch2 maintenance pass, so the test asks every second; it takes 13-18 s against a HAPI
started with ``--hapi.batch2.maintenance-interval-ms=5000``, 60-170 s at HAPI's default
minute (docs/record.md).
"""

from __future__ import annotations

import asyncio
import csv
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "mapping"))

from mapping_helpers import ENDPOINT, site_engine

from bridge.config import FhirSettings
from bridge.record.bulk import BulkExportClient
from bridge.record.dose import map_dose_sr
from bridge.record.export import export_bulk
from bridge.record.report import map_report_sr
from bridge.record.rules import load_dose_rules
from samples.generator import generate_studies
from samples.rdsr import ct_dose_sr
from samples.report_sr import text_report_sr

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _create(client: httpx.Client, resource: dict[str, Any]) -> str:
    resp = client.post(resource["resourceType"], json=resource)
    assert resp.status_code == 201, resp.text
    return f"{resource['resourceType']}/{resp.json()['id']}"


def test_bulk_export_of_a_patient_gives_its_study_report_and_dose(
        hapi: Any, ns: Namespace, tmp_path: Path) -> None:
    with httpx.Client(base_url=hapi.fhir_url, headers=FHIR_JSON, timeout=60) as client:
        operations = [o.get("name") for o in
                      client.get("metadata").json()["rest"][0].get("operation", [])]
        # our launcher offers $export: a HAPI without it is a stale dev stack, not a pass
        assert "export" in operations, ("this HAPI predates the launcher's bulk export "
                                        "(rebuild: docker/hapi/build.sh, restart the stack)")
        studies = list(generate_studies(100, seed=16, profile="small", id_prefix=ns.token[:6]))
        study = next(s for s in studies if "CT" in s.truth.modalities)
        mapped = site_engine().map_study(study.to_dicom_json(), endpoint=ENDPOINT)
        patient = {"reference": _create(client, mapped.patient.resource())}
        study_ref = {"reference": _create(client, {**mapped.imaging_study,
                                                   "subject": patient})}
        ds, truth = ct_dose_sr(study.truth, seed=1)
        dose = map_dose_sr(ds.to_json_dict(), imaging_study=study_ref, patient=patient)
        for observation in dose.resources:
            _create(client, observation)
        report = map_report_sr(text_report_sr(study.truth, seed=1)[0].to_json_dict(),
                               imaging_study=study_ref, patient=patient)
        _create(client, report.resources[0])

    progress: list[str] = []

    async def run() -> Any:
        async with BulkExportClient(FhirSettings(base_url=hapi.fhir_url), max_wait=300,
                                    max_poll=1.0) as bulk:
            return await export_bulk(bulk, tmp_path, rules=load_dose_rules(), parquet=False,
                                     patients=[patient["reference"]],
                                     progress=progress.append)

    result = asyncio.run(run())
    series = len(mapped.imaging_study.get("series", []))
    assert result.rows == {"studies": 1, "series": series, "reports": 1,
                           "dose": len(dose.resources), "patients": 1}
    with (tmp_path / "dose.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    summary = next(r for r in rows if r["kind"] == "summary")
    assert summary["patient"] == patient["reference"]
    assert summary["study_id"] == study_ref["reference"].split("/")[1]
    assert float(summary["dlp_total_mgy_cm"]) == pytest.approx(truth.dlp_total_mgy_cm, rel=1e-6)
    assert progress  # HAPI's X-Progress was seen while the job ran
