"""A study's reports and dose SRs through the real sync into the real EHR (issue 16).

A generated CT study with its X-Ray Radiation Dose SR, a Basic Text SR report and an
Encapsulated PDF report, and a radiography study whose dose SR has one bad item (and whose
report the EHR already holds), are stored in the shared Orthanc by STOW-RS and synced; the
``record.map`` follow-up then writes, in the shared HAPI, the DiagnosticReports (status from
the flags, conclusion, the PDF's bytes) and the dose summary and event Observations (values
and UCUM units as the SR says), all pointing to the ImagingStudy the sync wrote and its
patient.  Running the follow-up again changes nothing (every version stays), the bad item is
left out with a warning while the rest is written, and the radiograph's text SR is not
written beside the EHR's report.  The export of those patients answers the example queries.
"""

from __future__ import annotations

import base64
import csv
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydicom.dataset import Dataset
from typer.testing import CliRunner

from bridge.cli import app as cli_app
from bridge.cli_record import _preview_study
from bridge.config import Settings
from bridge.fhir.client import FhirClient
from bridge.record.export import export_tables
from bridge.record.handler import RecordHandler
from bridge.record.rules import load_dose_rules, read_dose_rules
from bridge.record.service import record_worker
from bridge.sections.record import RecordSettings
from bridge.state.tasks import RECORD_MAP, task_key
from samples.generator import GeneratedStudy, generate_studies
from samples.load import load_studies
from samples.rdsr import DoseTruth, dose_sr
from samples.records import stow
from samples.report_pdf import pdf_report
from samples.report_sr import ReportTruth, text_report_sr
from samples.seed_ehr import seed_ehr
from samples.sr_content import part10
from tests.integration.sync_helpers import (
    REPO_ROOT,
    bridge_settings,
    fhir_search,
    study_by_uid,
)
from tests.support.wiring import sync_context

pytestmark = pytest.mark.integration

ARCHIVE = "orthanc"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
UCUM = "http://unitsofmeasure.org"


@dataclass
class Stored:
    ct: GeneratedStudy
    cr: GeneratedStudy
    ct_dose: DoseTruth
    cr_dose: DoseTruth
    report: ReportTruth
    pdf: bytes
    pdf_uid: str
    #: the radiograph's text SR, and the report the EHR holds for its order
    cr_report_uid: str
    ehr_report: str


def _bad_dap(ds: Dataset) -> None:
    """Drop the units of the first irradiation event's DAP (122130): a defect to leave out."""
    def walk(items: Any) -> Iterator[Dataset]:
        for item in items:
            yield item
            yield from walk(getattr(item, "ContentSequence", []))

    dap = next(i for i in walk(ds.ContentSequence)
               if i.ConceptNameCodeSequence[0].CodeValue == "122130")
    del dap.MeasuredValueSequence[0].MeasurementUnitsCodeSequence


def _store(orthanc: Any, datasets: list[Dataset], study: GeneratedStudy) -> None:
    """The study's images, then its SRs, by STOW-RS (PS3.18 10.5)."""
    loaded = load_studies([study], url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password)
    assert loaded.failed_studies == 0, loaded.errors
    with httpx.Client(auth=orthanc.auth, timeout=60) as client:
        stow(client, orthanc.dicomweb_url, study.study_uid, [part10(ds) for ds in datasets])


@pytest.fixture(scope="module")
def stored(orthanc: Any, hapi: Any) -> Stored:
    # a fresh prefix gives fresh patients and UIDs (and other draws: the modalities and
    # time zones vary, so the first CT and the first radiograph are taken, however placed)
    token = uuid.uuid4().hex[:6].upper()
    ct = cr = None
    for study in generate_studies(400, seed=1616, profile="small", id_prefix=token):
        modalities = set(study.truth.modalities)
        ct = ct or (study if "CT" in modalities else None)
        cr = cr or (study if modalities & {"CR", "DX"} else None)
        if ct and cr:
            break
    assert ct is not None and cr is not None
    ct_made, cr_made = dose_sr(ct.truth, seed=3), dose_sr(cr.truth, seed=3)
    assert ct_made is not None and cr_made is not None
    report_ds, report = text_report_sr(ct.truth, seed=3, verified=True)
    pdf_ds, _, pdf = pdf_report(ct.truth, seed=3)
    _bad_dap(cr_made[0])
    # the radiograph's report lives in the EHR already (the RIS's), so the archive's copy
    # (a text SR) must not be written beside it
    cr_report_ds, cr_report = text_report_sr(cr.truth, seed=3)
    _store(orthanc, [ct_made[0], report_ds, pdf_ds], ct)
    _store(orthanc, [cr_made[0], cr_report_ds], cr)
    seed_ehr([ct.truth, cr.truth], fhir_url=hapi.fhir_url)
    ehr_report = _ehr_report(hapi, cr)
    return Stored(ct, cr, ct_made[1], cr_made[1], report, pdf, str(pdf_ds.SOPInstanceUID),
                  cr_report.sop_uid, ehr_report)


def _ehr_report(hapi: Any, study: GeneratedStudy) -> str:
    """A DiagnosticReport of the EHR's own for the study's order; its reference."""
    truth = study.truth
    [order] = fhir_search(hapi, "ServiceRequest", {
        "identifier": f"{truth.accession_system}|{truth.accession_number}"})
    report = {"resourceType": "DiagnosticReport", "status": "final",
              "basedOn": [{"reference": f"ServiceRequest/{order['id']}"}],
              "subject": order["subject"], "code": {"text": "XR report (RIS)"},
              "conclusion": "Written in the RIS."}
    resp = httpx.post(f"{hapi.fhir_url}/DiagnosticReport", json=report, timeout=60,
                      headers={"Content-Type": "application/fhir+json"})
    assert resp.status_code == 201, resp.text
    return f"DiagnosticReport/{resp.json()['id']}"


async def _sync_and_record(settings: Settings, uids: list[str], *, again: bool = False
                           ) -> dict[str, dict[str, Any]]:
    """Sync the studies (``record.enabled``: each written study queues ``record.map``),
    then run the record worker until no task is ready; each study's task result.
    ``again``: the studies are synced already (unchanged: no follow-up), so their record
    tasks are queued by hand, as ``imaging-bridge record enqueue`` does."""
    keys = [task_key(ARCHIVE, uid) for uid in uids]
    async with sync_context(settings) as ctx:
        for uid in uids:
            ctx.store.mark_due(ARCHIVE, uid, reason="manual")
        stats = await ctx.runner.drain()
        assert (stats.failed, stats.retried) == (0, 0)
        if again:
            assert stats.unchanged == len(uids)
            for key in keys:
                ctx.store.enqueue_task(RECORD_MAP, key)
        assert [t.key for t in ctx.store.tasks(RECORD_MAP, status="due")] == sorted(keys)
        handler = RecordHandler(archives=ctx.archives, fhir=ctx.fhir,
                                rules=read_dose_rules(settings.record.dose_rules_file))
        try:
            worker = record_worker(ctx.store, handler, settings.record, worker_id="test")
            assert await worker.drain() == len(uids)
        finally:
            await handler.aclose()
        tasks = {uid: ctx.store.task(RECORD_MAP, key) for uid, key in zip(uids, keys,
                                                                         strict=True)}
    assert all(t is not None and t.status == "done" for t in tasks.values()), tasks
    return {uid: dict(t.result or {}) for uid, t in tasks.items() if t is not None}


def _by_identifier(hapi: Any, resource_type: str, uid: str) -> dict[str, Any]:
    [found] = fhir_search(hapi, resource_type, {"identifier": f"urn:dicom:uid|urn:oid:{uid}"})
    return found


def _components(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["code"]["coding"][0]["code"]: c for c in resource.get("component", [])}


def _versions(hapi: Any, locations: list[str]) -> dict[str, str]:
    out = {}
    with httpx.Client(timeout=60) as client:
        for location in locations:
            path = location.split("/_history/")[0]
            resp = client.get(f"{hapi.fhir_url}/{path}")
            resp.raise_for_status()
            out[path] = resp.json()["meta"]["versionId"]
    return out


@dataclass
class Recorded:
    settings: Settings
    #: the settings' file (for the CLI)
    config: Path
    #: the first run's task result per study UID
    first: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
async def recorded(stored: Stored, orthanc: Any, hapi: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    directory = tmp_path_factory.mktemp("record")
    settings = bridge_settings(orthanc, hapi, directory)
    settings = settings.model_copy(update={"record": RecordSettings(enabled=True)})
    first = await _sync_and_record(settings, [stored.ct.study_uid, stored.cr.study_uid])
    return Recorded(settings, directory / "bridge.yaml", first)


async def test_reports_and_dose_are_written_once_linked_to_the_study(
    stored: Stored, recorded: Recorded, hapi: Any
) -> None:
    settings, first = recorded.settings, recorded.first
    ct_uid, cr_uid = stored.ct.study_uid, stored.cr.study_uid

    [study] = study_by_uid(hapi, ct_uid)
    study_ref = f"ImagingStudy/{study['id']}"
    patient_ref = study["subject"]["reference"]

    # the text SR: status from its flags, the impression as conclusion
    report = _by_identifier(hapi, "DiagnosticReport", stored.report.sop_uid)
    assert report["status"] == "final"
    assert report["conclusion"] == stored.report.impression
    assert report["imagingStudy"] == [{"reference": study_ref}]
    assert report["subject"]["reference"] == patient_ref
    # the encapsulated PDF: its bytes fetched by BulkDataURI, padding trimmed
    pdf = _by_identifier(hapi, "DiagnosticReport", stored.pdf_uid)
    assert base64.b64decode(pdf["presentedForm"][0]["data"]) == stored.pdf

    # the dose summary and one Observation per irradiation event, values and units
    summary = _by_identifier(hapi, "Observation", stored.ct_dose.sop_uid)
    assert summary["partOf"] == [{"reference": study_ref}]
    assert summary["subject"]["reference"] == patient_ref
    dlp = _components(summary)["113813"]["valueQuantity"]
    assert (dlp["value"], dlp["unit"], dlp["system"]) == (
        pytest.approx(stored.ct_dose.dlp_total_mgy_cm), "mGy.cm", UCUM)
    for event in stored.ct_dose.events:
        observation = _by_identifier(hapi, "Observation", event.event_uid)
        assert observation["code"]["coding"][0] == {
            "system": DCM, "code": "113852", "display": "Irradiation Event"}
        assert observation["partOf"] == [{"reference": study_ref}]
        parts = _components(observation)
        assert parts["113830"]["valueQuantity"]["value"] == pytest.approx(event.ctdivol_mgy)
        assert parts["113830"]["valueQuantity"]["unit"] == "mGy"
        assert parts["113838"]["valueQuantity"]["value"] == pytest.approx(event.dlp_mgy_cm)
    assert first[ct_uid]["instances"] == {"report": 1, "dose": 1, "pdf": 1}
    assert len(first[ct_uid]["written"]) == 3 + len(stored.ct_dose.events)
    # a study without a time zone has no instant to give DiagnosticReport.issued
    assert {w["code"] for w in first[ct_uid]["warnings"]} <= {"issued-unknown"}

    # the radiograph's report lives in the EHR: found, the SR's not written beside it
    [in_ehr] = [w for w in first[cr_uid]["warnings"] if w["code"] == "report-in-ehr"]
    assert stored.ehr_report in in_ehr["message"]
    assert fhir_search(hapi, "DiagnosticReport", {
        "identifier": f"urn:dicom:uid|urn:oid:{stored.cr_report_uid}"}) == []
    # the radiography dose SR's bad item is left out with a warning, the rest is written
    [cr_warning] = [w for w in first[cr_uid]["warnings"] if w["code"] != "report-in-ehr"]
    assert cr_warning["code"] == "dose-unit-missing"
    assert "(DCM,122130)" in cr_warning["item"]
    bad_event = stored.cr_dose.events[0]
    written_bad = _by_identifier(hapi, "Observation", bad_event.event_uid)
    assert "122130" not in _components(written_bad)
    cr_summary = _by_identifier(hapi, "Observation", stored.cr_dose.sop_uid)
    assert _components(cr_summary)["113722"]["valueQuantity"]["value"] == pytest.approx(
        stored.cr_dose.dap_total_gy_m2)
    for event in stored.cr_dose.events[1:]:
        other = _by_identifier(hapi, "Observation", event.event_uid)
        assert _components(other)["122130"]["valueQuantity"]["value"] == pytest.approx(
            event.dap_gy_m2)

    # the preview of the synced study reads the same and writes nothing
    preview = await _preview_study(settings, ARCHIVE, ct_uid)
    assert len(preview["resources"]) == len(first[ct_uid]["written"])
    assert {i["kind"] for i in preview["instances"]} == {"report", "dose", "pdf"}

    # again: the same resources, not one new version
    before = _versions(hapi, first[ct_uid]["written"] + first[cr_uid]["written"])
    second = await _sync_and_record(settings, [ct_uid, cr_uid], again=True)
    assert {k: len(v["written"]) for k, v in second.items()} == {
        k: len(v["written"]) for k, v in first.items()}
    assert _versions(hapi, second[ct_uid]["written"] + second[cr_uid]["written"]) == before
    assert len(fhir_search(hapi, "Observation", {"part-of": study_ref})) == \
        1 + len(stored.ct_dose.events)


def _queries() -> dict[str, str]:
    text = (REPO_ROOT / "mappings" / "record" / "example_queries.sql").read_text()
    parts = text.split("-- name: ")[1:]
    return {part.split("\n", 1)[0].strip(): part.split("\n", 1)[1] for part in parts}


async def test_the_export_answers_ct_studies_per_year_and_cumulative_dlp(
    stored: Stored, recorded: Recorded, hapi: Any, tmp_path: Path
) -> None:
    import duckdb

    ct_study, cr_study = (study_by_uid(hapi, s.study_uid)[0] for s in (stored.ct, stored.cr))
    patients = [ct_study["subject"]["reference"], cr_study["subject"]["reference"]]
    async with FhirClient(recorded.settings.fhir) as fhir:
        result = await export_tables(fhir, tmp_path, rules=load_dose_rules(),
                                     patients=patients)
    assert [p.name for p in result.files] == ["studies.parquet", "series.parquet",
                                              "reports.parquet", "dose.parquet",
                                              "patients.parquet"]
    assert result.rows["patients"] == 2
    assert list(tmp_path.glob(".*")) == []  # no partial file left behind
    events = len(stored.ct_dose.events) + len(stored.cr_dose.events)
    assert result.rows["dose"] == 2 + events
    assert result.rows["reports"] == 2

    db = duckdb.connect()
    for name in ("studies", "series", "reports", "dose"):
        db.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{tmp_path}/{name}.parquet')")
    answers = {name: db.execute(sql).fetchall() for name, sql in _queries().items()}
    ct_year = int(stored.ct.truth.study_date[:4])
    assert answers["ct_studies_per_year"] == [(ct_year, 1)]
    dlp = {patient: total for patient, total, _ in answers["cumulative_ct_dlp_per_patient"]}
    assert dlp == {patients[0]: pytest.approx(stored.ct_dose.dlp_total_mgy_cm)}
    assert sorted(answers["reports_by_status"]) == [("final", 1), ("unknown", 1)]
    # the radiograph's DAP total, in the canonical Gy.m2
    [(dap,)] = db.execute("SELECT dap_total_gy_m2 FROM dose WHERE kind = 'summary' "
                          "AND patient = ?", [patients[1]]).fetchall()
    assert dap == pytest.approx(stored.cr_dose.dap_total_gy_m2)


def test_the_export_command_writes_csv_without_pyarrow_asked(
    stored: Stored, recorded: Recorded, hapi: Any, tmp_path: Path
) -> None:
    [study] = study_by_uid(hapi, stored.ct.study_uid)
    result = CliRunner().invoke(cli_app, [
        "export", "--out", str(tmp_path), "--patient", study["subject"]["reference"],
        "--csv", "--config", str(recorded.config)])
    assert result.exit_code == 0, result.output
    assert "studies 1, series" in result.output
    with (tmp_path / "dose.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["kind"] for r in rows) == ["event"] * len(stored.ct_dose.events) + [
        "summary"]
    [summary] = [r for r in rows if r["kind"] == "summary"]
    assert float(summary["dlp_total_mgy_cm"]) == pytest.approx(stored.ct_dose.dlp_total_mgy_cm)
    assert summary["study_id"] == study["id"]
