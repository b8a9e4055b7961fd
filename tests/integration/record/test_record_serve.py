"""``imaging-bridge serve`` with ``record.enabled`` (issue 16): the sync's follow-up wakes the
record room, which writes the study's report and dose with no command run: the product path
as deployed (own Orthanc, the shared HAPI as EHR)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from bridge.record.report import report_status
from samples.generator import generate_studies
from samples.load import load_studies
from samples.records import load_records
from samples.seed_ehr import seed_ehr
from tests.integration.serve_helpers import ServeProcess, serve_config
from tests.integration.sync_helpers import fhir_search
from tests.support.waits import wait_until

pytestmark = pytest.mark.integration


def test_serve_writes_a_synced_studys_report_and_dose_through_its_record_room(
        orthanc_factory: Any, hapi: Any, ns: Any, tmp_path: Path) -> None:
    orthanc = orthanc_factory()
    study = next(s for s in generate_studies(400, seed=16, profile="small",
                                             id_prefix=uuid.uuid4().hex[:6].upper())
                 if "CT" in s.truth.modalities)
    stored = load_studies([study], url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password)
    assert stored.failed_studies == 0, stored.errors
    # the report and dose SR by STOW-RS, as samples.records loads them for a demo
    [records] = load_records([study], url=orthanc.dicomweb_url, username=orthanc.username,
                             password=orthanc.password, seed=5).studies
    assert records.dose is not None
    seed_ehr([study.truth], fhir_url=hapi.fhir_url)
    config = serve_config(orthanc, hapi, tmp_path, ns,  # a minute's poll: woken, or late
                          record={"enabled": True, "worker": {"poll_interval": 60.0}})
    config["sync"]["poll_window_days"] = 20000  # the first poll finds the study

    def written(resource_type: str, uid: str) -> list[dict[str, Any]]:
        return fhir_search(hapi, resource_type, {"identifier": f"urn:dicom:uid|urn:oid:{uid}"})

    with ServeProcess(config, tmp_path) as serve:
        [diagnostic] = wait_until(lambda: written("DiagnosticReport", records.report.sop_uid),
                                  timeout=45, what=f"the report written ({serve.log})")
    truth = records.report
    assert diagnostic["status"] == report_status(truth.completion, truth.verification)
    assert diagnostic["conclusion"] == truth.impression
    [summary] = written("Observation", records.dose.sop_uid)
    assert summary["partOf"] == diagnostic["imagingStudy"]
