"""The Bulk Data export client and ``export --bulk`` against an in-process Bulk Data server
(MockTransport): kick-off parameters and headers, polling that honours Retry-After and
X-Progress, NDJSON streamed into the tables, the job deleted, failures cancelled."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from record_golden_cases import PATIENT_REF, STUDY_REF, _study

from bridge.config import FhirSettings
from bridge.errors import FhirBusy, FhirRejected
from bridge.record.bulk import BulkExportClient
from bridge.record.dose import map_dose_sr
from bridge.record.export import export_bulk
from bridge.record.rules import load_dose_rules
from samples.rdsr import ct_dose_sr

BASE = "http://ehr.test/fhir"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _resources() -> dict[str, list[dict[str, Any]]]:
    study = {"resourceType": "ImagingStudy", "id": "s1", "subject": PATIENT_REF,
             "started": "2024-03-01T10:00:00+01:00",
             "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
             "modality": [{"system": DCM, "code": "CT"}],
             "series": [{"uid": "1.2.3.1", "number": 1,
                         "modality": {"system": DCM, "code": "CT"}},
                        {"uid": "1.2.3.2", "number": 2,
                         "modality": {"system": DCM, "code": "CT"}}]}
    ds, _ = ct_dose_sr(_study("CT").truth, seed=3)
    dose = map_dose_sr(ds.to_json_dict(), imaging_study=STUDY_REF,
                       patient=PATIENT_REF).resources
    for n, resource in enumerate(dose):
        resource["id"] = f"o{n}"
    report = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final",
              "subject": PATIENT_REF, "imagingStudy": [STUDY_REF],
              "code": {"text": "report"}, "conclusion": "no finding"}
    return {"ImagingStudy": [study], "Observation": list(dose), "DiagnosticReport": [report],
            "Patient": [{"resourceType": "Patient", "id": "p1"}]}


class FakeBulkServer:
    """Bulk Data IG v2 export: 202 twice (Retry-After 7 s, then an HTTP-date-less 202
    without it), then the manifest; files as NDJSON; DELETE recorded."""

    def __init__(self, *, polls: int = 2, fail_status: int | None = None) -> None:
        self.resources = _resources()
        self.polls = polls
        self.fail_status = fail_status
        self.requests: list[httpx.Request] = []
        self.deleted = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/$export"):
            return httpx.Response(202, headers={"Content-Location": f"{BASE}/status/1"})
        if path == "/fhir/status/1" and request.method == "DELETE":
            self.deleted = True
            return httpx.Response(202)
        if path == "/fhir/status/1":
            if self.fail_status is not None:
                return httpx.Response(self.fail_status, json={
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "exception",
                               "diagnostics": "export failed"}]})
            if self.polls:
                self.polls -= 1
                headers = {"X-Progress": f"{50 if self.polls else 90}% done"}
                if self.polls:
                    headers["Retry-After"] = "7"
                return httpx.Response(202, headers=headers)
            return httpx.Response(200, json={
                "transactionTime": "2026-12-08T00:00:00Z", "requiresAccessToken": True,
                "request": f"{BASE}/$export",
                "output": [{"type": t, "url": f"{BASE}/files/{t}"} for t in self.resources],
                "error": []})
        if path.startswith("/fhir/files/"):
            kind = path.rsplit("/", 1)[1]
            body = "\n".join(json.dumps(r) for r in self.resources[kind]) + "\n"
            return httpx.Response(200, content=body.encode(),
                                  headers={"Content-Type": "application/fhir+ndjson"})
        return httpx.Response(404)


def _client(server: FakeBulkServer, slept: list[float], *, max_wait: float = 3600
            ) -> BulkExportClient:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return BulkExportClient(FhirSettings(base_url=BASE), max_wait=max_wait,
                            transport=httpx.MockTransport(server), sleep=sleep)


def test_export_bulk_polls_streams_the_ndjson_into_tables_and_deletes_the_job(
        tmp_path: Path) -> None:
    server = FakeBulkServer()
    slept: list[float] = []
    progress: list[str] = []

    async def run() -> Any:
        async with _client(server, slept) as client:
            return await export_bulk(client, tmp_path, rules=load_dose_rules(),
                                     parquet=False, progress=progress.append)

    result = asyncio.run(run())
    kick = server.requests[0]
    assert kick.url.path == "/fhir/$export" and kick.method == "GET"
    assert kick.headers["Prefer"] == "respond-async"
    assert kick.headers["Accept"] == "application/fhir+json"
    params = dict(kick.url.params.multi_items())
    assert params["_type"] == "ImagingStudy,DiagnosticReport,Observation,Patient"
    assert params["_typeFilter"].startswith("Observation?code=http://loinc.org|73569-6")
    assert slept == [7.0, 1.0]  # Retry-After, then the default without it
    assert progress == ["50% done", "90% done"]
    downloads = [r for r in server.requests if "/files/" in r.url.path]
    assert all(r.headers["Accept"] == "application/fhir+ndjson" for r in downloads)
    assert server.deleted
    observations = len(server.resources["Observation"])
    assert result.rows == {"studies": 1, "series": 2, "reports": 1, "dose": observations,
                           "patients": 1}
    assert (tmp_path / "dose.csv").read_text().count("\n") == observations + 1
    assert not list(tmp_path.glob(".*.partial"))


def test_patient_level_export_and_since(tmp_path: Path) -> None:
    from datetime import date

    server = FakeBulkServer(polls=0)
    slept: list[float] = []

    async def run() -> None:
        async with _client(server, slept) as client:
            await export_bulk(client, tmp_path, rules=load_dose_rules(), parquet=False,
                              patients=["Patient/p1", "Patient/p2"], since=date(2026, 1, 2))

    asyncio.run(run())
    kick = server.requests[0]
    assert (kick.method, kick.url.path) == ("POST", "/fhir/Patient/$export")
    assert kick.headers["Prefer"] == "respond-async"
    parameters = json.loads(kick.content)["parameter"]
    assert [p["valueReference"]["reference"] for p in parameters
            if p["name"] == "patient"] == ["Patient/p1", "Patient/p2"]
    assert {"name": "_since", "valueInstant": "2026-01-02T00:00:00Z"} in parameters
    assert {"name": "_type", "valueString": "ImagingStudy,DiagnosticReport,Observation,"
            "Patient"} in parameters


def test_a_failed_export_is_rejected_deleted_and_leaves_no_table(tmp_path: Path) -> None:
    server = FakeBulkServer(fail_status=400)
    slept: list[float] = []

    async def run() -> None:
        async with _client(server, slept) as client:
            await export_bulk(client, tmp_path, rules=load_dose_rules(), parquet=False)

    with pytest.raises(FhirRejected, match="export failed"):
        asyncio.run(run())
    assert server.deleted and not list(tmp_path.iterdir())


def test_an_export_not_complete_in_time_is_cancelled(tmp_path: Path) -> None:
    server = FakeBulkServer(polls=100)
    slept: list[float] = []

    async def run() -> None:
        async with _client(server, slept, max_wait=20) as client:
            await export_bulk(client, tmp_path, rules=load_dose_rules(), parquet=False)

    with pytest.raises(FhirBusy, match="not complete"):
        asyncio.run(run())
    assert sum(slept) <= 20 and server.deleted


def test_the_files_get_credentials_only_on_the_servers_origin() -> None:
    seen: dict[str, str | None] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen[request.url.host] = request.headers.get("Authorization")
        return httpx.Response(200, content=b'{"resourceType": "Patient"}\n')

    from bridge.record.bulk import BulkFile, BulkManifest

    settings = FhirSettings.model_validate(
        {"base_url": BASE, "auth": {"kind": "basic", "username": "u", "password": "p"}})
    manifest = BulkManifest("t", True, [])

    async def run() -> None:
        async with BulkExportClient(settings, transport=httpx.MockTransport(handler)) as c:
            for url in (f"{BASE}/f", "http://elsewhere.test/f"):
                async for _ in c.resources(manifest, BulkFile("Patient", url)):
                    pass

    asyncio.run(run())
    assert seen["ehr.test"] and seen["elsewhere.test"] is None
