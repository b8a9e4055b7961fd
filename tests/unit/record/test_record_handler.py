"""The ``record.map`` handler against in-process archive and FHIR servers (MockTransport):
what it reads, what it writes, and what it does when something is missing."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from record_golden_cases import _study

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings, FhirSettings
from bridge.errors import ArchiveUnavailable, ConfigError
from bridge.fhir.client import FhirClient
from bridge.record.bulkdata import BulkDataReader, DocumentUnreadable, single_part
from bridge.record.handler import RecordHandler, StudyNotInFhir, parse_key
from bridge.state.tasks import task_key
from samples.rdsr import ct_dose_sr
from samples.report_pdf import pdf_report
from samples.report_sr import text_report_sr

JSON = dict[str, Any]
ARCHIVE = "http://archive.test/dicom-web"
FHIR = "http://ehr.test/fhir"
STUDY = {"resourceType": "ImagingStudy", "id": "is-1",
         "subject": {"reference": "Patient/p-1"},
         "basedOn": [{"reference": "ServiceRequest/sr-1"}]}


class Servers:
    """The archive's metadata and bulk data, the FHIR server's ImagingStudy search and
    transaction; every request is kept."""

    def __init__(self, instances: list[JSON], *, study: JSON | None = STUDY,
                 pdf: bytes = b"") -> None:
        self.instances = instances
        self.study = study
        self.pdf = pdf
        self.requests: list[httpx.Request] = []
        self.posted: list[JSON] = []
        #: what ``DiagnosticReport?based-on=`` finds (the EHR's own reports)
        self.ehr_reports: list[JSON] = []

    def archive(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path.endswith("/series"):  # QIDO-RS series of the study
            rows = {i["0020000E"]["Value"][0]: i["00080060"] for i in self.instances}
            return httpx.Response(200, json=[{"0020000E": {"vr": "UI", "Value": [uid]},
                                              "00080060": modality}
                                             for uid, modality in rows.items()])
        if "/series/" in path and path.endswith("/metadata"):
            series = path.split("/series/")[1].split("/")[0]
            return httpx.Response(200, json=[i for i in self.instances
                                             if i["0020000E"]["Value"][0] == series])
        if "/bulk/" in request.url.path:
            body = (b"--b1\r\nContent-Type: application/octet-stream\r\n\r\n" + self.pdf
                    + b"\r\n--b1--\r\n")
            return httpx.Response(200, content=body, headers={
                "Content-Type": 'multipart/related; type="application/octet-stream"; '
                                "boundary=b1"})
        return httpx.Response(404)

    def fhir(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET" and request.url.path.endswith("/ImagingStudy"):
            entries = [{"resource": self.study, "search": {"mode": "match"}}] \
                if self.study else []
            return httpx.Response(200, json={"resourceType": "Bundle", "entry": entries})
        if request.method == "GET" and request.url.path.endswith("/DiagnosticReport"):
            assert request.url.params["based-on"] == "ServiceRequest/sr-1"
            return httpx.Response(200, json={"resourceType": "Bundle", "entry": [
                {"resource": r, "search": {"mode": "match"}} for r in self.ehr_reports]})
        if request.method == "POST":
            bundle = json.loads(request.content)
            self.posted.append(bundle)
            return httpx.Response(200, json={"resourceType": "Bundle", "entry": [
                {"response": {"status": "201 Created",
                              "location": f"{e['resource']['resourceType']}/{n}/_history/1"}}
                for n, e in enumerate(bundle["entry"])]})
        return httpx.Response(404)


def _handler(servers: Servers) -> RecordHandler:
    archive_settings = ArchiveSettings(name="pacs", base_url=ARCHIVE)
    archive = DicomwebClient(archive_settings, transport=httpx.MockTransport(servers.archive))
    fhir = FhirClient(FhirSettings(base_url=FHIR), transport=httpx.MockTransport(servers.fhir))
    reader = BulkDataReader(archive_settings, transport=httpx.MockTransport(servers.archive))
    return RecordHandler(archives={"pacs": archive}, fhir=fhir, documents={"pacs": reader})


class _Task:
    def __init__(self, key: str) -> None:
        self.key = key


def _record_study(bulk_uri: str | None = None) -> tuple[list[JSON], str, bytes]:
    study = _study("CT")
    pdf_ds, _, pdf = pdf_report(study.truth, seed=1)
    pdf_json = pdf_ds.to_json_dict()
    if bulk_uri is not None:
        pdf_json["00420011"] = {"vr": "OB", "BulkDataURI": bulk_uri}
    instances = [*study.to_dicom_json(), ct_dose_sr(study.truth, seed=1)[0].to_json_dict(),
                 text_report_sr(study.truth, seed=1)[0].to_json_dict(), pdf_json]
    return instances, study.study_uid, pdf


async def test_the_study_record_is_written_in_one_transaction_of_conditional_updates() -> None:
    instances, uid, pdf = _record_study(f"{ARCHIVE}/studies/x/bulk/00420011")
    servers = Servers(instances, pdf=pdf)
    handler = _handler(servers)
    result = await handler(_Task(task_key("pacs", uid)))
    [bundle] = servers.posted
    assert bundle["type"] == "transaction"
    assert {e["request"]["method"] for e in bundle["entry"]} == {"PUT"}
    resources = [e["resource"] for e in bundle["entry"]]
    assert all(r.get("partOf", r.get("imagingStudy")) == [{"reference": "ImagingStudy/is-1"}]
               for r in resources)
    assert all(r["subject"] == {"reference": "Patient/p-1"} for r in resources)
    reports = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    assert all(r["basedOn"] == STUDY["basedOn"] for r in reports)
    [pdf_report_resource] = [r for r in reports if "application/pdf" in json.dumps(r)]
    assert base64.b64decode(pdf_report_resource["presentedForm"][0]["data"]) == pdf
    assert all(any(t["code"] == "managed" for t in r["meta"]["tag"]) for r in resources)
    assert result["instances"] == {"report": 1, "dose": 1, "pdf": 1}
    assert len(result["written"]) == len(resources)
    assert result["warnings"] == [] and result["warning_count"] == 0
    # only the record's series' metadata were read, not the images'
    read = [r.url.path for r in servers.requests if r.url.path.endswith("/metadata")]
    assert read and all("/series/" in path for path in read)
    images = {i["0020000E"]["Value"][0] for i in instances
              if i["00080060"]["Value"][0] not in ("SR", "DOC", "OT")}
    assert not any(series in path for path in read for series in images)
    # the ImagingStudy was looked up by the study's DICOM identifier
    [search] = [r for r in servers.requests if r.url.path.endswith("/ImagingStudy")]
    assert unquote(str(search.url)).count(f"urn:dicom:uid|urn:oid:{uid}") == 1


async def test_a_report_the_ehr_holds_for_the_order_is_not_duplicated() -> None:
    instances, uid, pdf = _record_study(f"{ARCHIVE}/studies/x/bulk/00420011")
    servers = Servers(instances, pdf=pdf)
    ours = {"resourceType": "DiagnosticReport", "id": "ours", "status": "final",
            "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2"}]}
    servers.ehr_reports = [ours]  # our own from an earlier run: not the EHR's
    await _handler(servers).record("pacs", uid)
    assert sum(e["resource"]["resourceType"] == "DiagnosticReport"
               for e in servers.posted[0]["entry"]) == 2
    servers.posted.clear()
    servers.ehr_reports = [ours, {"resourceType": "DiagnosticReport", "id": "ris-7",
                                  "status": "final"}]
    result = (await _handler(servers).record("pacs", uid)).to_json()
    [bundle] = servers.posted
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == {"Observation"}
    warnings = [w for w in result["warnings"] if w["code"] == "report-in-ehr"]
    assert len(warnings) == 2
    assert all("DiagnosticReport/ris-7" in w["message"] for w in warnings)


async def test_a_study_without_reports_or_dose_asks_nothing_of_the_fhir_server() -> None:
    study = _study("MR")
    servers = Servers(study.to_dicom_json())
    result = await _handler(servers)(_Task(task_key("pacs", study.study_uid)))
    assert result["instances"] == {"report": 0, "dose": 0, "pdf": 0}
    assert result["written"] == []
    assert not any(str(r.url).startswith(FHIR) for r in servers.requests)
    # the series list said there is no SR or document: no image's metadata read
    assert [r.url.path.rsplit("/", 1)[1] for r in servers.requests] == ["series"]


async def test_a_record_waits_for_its_imaging_study() -> None:
    instances, uid, _ = _record_study()
    servers = Servers(instances, study=None)
    with pytest.raises(StudyNotInFhir, match=uid):
        await _handler(servers).record("pacs", uid)
    assert servers.posted == []


async def test_a_bulk_data_uri_outside_the_archive_is_not_followed() -> None:
    instances, uid, _ = _record_study("http://elsewhere.test/bulk/00420011")
    servers = Servers(instances)
    result = await _handler(servers).record("pacs", uid)
    assert not any(r.url.host == "elsewhere.test" for r in servers.requests)
    warnings = result.to_json()["warnings"]
    assert [w["code"] for w in warnings] == ["document-unreadable", "document-absent"]
    assert "outside archive 'pacs'" in warnings[0]["message"]
    [bundle] = servers.posted
    pdf = [e["resource"] for e in bundle["entry"]
           if e["resource"]["resourceType"] == "DiagnosticReport"
           and "presentedForm" not in e["resource"]]
    assert len(pdf) == 1  # written without its document


async def test_an_unknown_archive_or_a_malformed_key_is_a_configuration_error() -> None:
    handler = _handler(Servers([]))
    with pytest.raises(ConfigError, match="no archive named 'other'"):
        await handler(_Task("other/1.2.3"))
    with pytest.raises(ConfigError, match="not <archive>/<study uid>"):
        parse_key("1.2.3")
    assert parse_key(task_key("pacs", "1.2.3")) == ("pacs", "1.2.3")


def test_the_bulk_data_part_is_cut_exactly() -> None:
    data = b"%PDF\r\n--not-the-boundary\r\n\x00\xff"
    body = b"--xyz\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--xyz--"
    assert single_part('multipart/related; type="application/octet-stream"; boundary=xyz',
                       body) == data
    assert single_part("application/octet-stream", data) == data
    with pytest.raises(DocumentUnreadable, match="closing delimiter"):
        single_part("multipart/related; boundary=xyz", body[:-9])


async def test_an_archive_outage_on_bulk_data_waits() -> None:
    settings = ArchiveSettings(name="pacs", base_url=ARCHIVE)
    reader = BulkDataReader(settings, transport=httpx.MockTransport(
        lambda r: httpx.Response(503, headers={"Retry-After": "7"})))
    with pytest.raises(ArchiveUnavailable) as caught:
        await reader.read("studies/1/bulk/00420011")
    assert caught.value.retry_after == 7
