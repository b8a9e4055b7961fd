"""The ``record.map`` task: one synced study's reports and dose SRs into the EHR.

The sync enqueues the task (key ``<archive>/<study uid>``) in the transaction that records
the study synced, so the ImagingStudy it wrote is there when the task runs.  The handler

1. lists the study's series (QIDO-RS) and reads the WADO-RS metadata (SR content
   sequences included, PS3.18 10.4.1.1.2) of those that can hold a report, dose SR or
   document (Modality SR, DOC, OT or none: not the images'), and keeps the report SRs,
   dose SRs and encapsulated PDFs (:func:`~bridge.record.study.record_instances`); a study
   without any is done at once;
2. finds the ImagingStudy the sync wrote by its identifier (``urn:dicom:uid``): its
   reference, its ``subject`` (the patient) and ``basedOn`` (the orders) are what the
   resources point to;
3. fetches each PDF's bytes by its BulkDataURI (:mod:`bridge.record.bulkdata`);
4. maps with the pure mappings, leaves out its reports when the EHR holds its own report
   of the study's order (``DiagnosticReport?based-on=``: found, not duplicated), and
   writes every resource in one FHIR transaction of conditional updates keyed on its
   identifier (SR SOP Instance UID, Irradiation Event UID): a second run creates nothing,
   and the server keeps the version of an unchanged resource.

The task's result keeps the written locations and the mapping warnings.  Errors follow the
tree of :mod:`bridge.errors` (an outage waits, a refusal is dead-lettered).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.archive.client import DicomwebClient
from bridge.errors import ConfigError, Retryable, StudyGone
from bridge.fhir.client import FhirClient
from bridge.jsonbytes import loads
from bridge.mapping import tags
from bridge.mapping.peek import first_str
from bridge.record.bulkdata import BulkDataReader, DocumentUnreadable
from bridge.record.fhir import DICOM_UID_SYSTEM
from bridge.record.result import RecordResult, RecordWarning
from bridge.record.rules import DoseRules
from bridge.record.study import (
    RecordInstance,
    RecordKind,
    document_uri,
    map_study_record,
    record_instances,
    transaction,
    without_reports,
)
from bridge.state.tasks import RECORD_MAP, task_key
from bridge.sync.assemble import BRIDGE_TAG

__all__ = ["TASK_KIND", "KeyedTask", "RecordHandler", "StudyContext", "StudyNotInFhir",
           "parse_key", "task_key"]

log = logging.getLogger(__name__)

#: the task kind the sync enqueues per synced study when ``record.enabled``
TASK_KIND = RECORD_MAP
#: warnings kept in a task's result (the count is always kept)
MAX_KEPT_WARNINGS = 50
#: series modalities that may hold the record: SR (SR Document Series, PS3.3 C.17.1: report
#: and dose SRs), DOC and OT (Encapsulated Document Series, C.24.1); a series without a
#: modality is read too
RECORD_MODALITIES = frozenset({"SR", "DOC", "OT"})


def parse_key(key: str) -> tuple[str, str]:
    """``(archive, study uid)`` of a task key (:func:`bridge.state.tasks.task_key`).

    :raises ConfigError: for a key without both parts.
    """
    archive, _, uid = key.partition("/")
    if not archive or not uid:
        raise ConfigError(f"record task key {key!r} is not <archive>/<study uid>")
    return archive, uid


class KeyedTask(Protocol):
    """What the handler reads of a task (:class:`bridge.state.tasks.Task` has it)."""

    @property
    def key(self) -> str: ...


class StudyNotInFhir(Retryable):
    """The study's ImagingStudy is not (yet) in the FHIR server; retried, then
    dead-lettered."""

    kind = "study-not-in-fhir"


@dataclass(frozen=True)
class StudyContext:
    """What the record's resources reference: the ImagingStudy the sync wrote, its subject
    and its orders."""

    imaging_study: dict[str, Any]
    patient: dict[str, Any]
    based_on: list[dict[str, Any]] = field(default_factory=list)


def _ours_first(found: list[dict[str, Any]]) -> dict[str, Any]:
    tagged = [r for r in found
              if any(t.get("system") == BRIDGE_TAG["system"] and t.get("code") ==
                     BRIDGE_TAG["code"] for t in (r.get("meta") or {}).get("tag", []))]
    return (tagged or found)[0]


async def study_context(fhir: FhirClient, study_uid: str) -> StudyContext | None:
    """The ImagingStudy with this Study Instance UID (ours first, when several) as
    references; ``None`` when the server has none."""
    bundle = await fhir.search("ImagingStudy", [
        ("identifier", f"{DICOM_UID_SYSTEM}|urn:oid:{study_uid}"),
        ("_elements", "identifier,subject,basedOn")])
    found = [e["resource"] for e in bundle.get("entry", []) or []
             if isinstance(e.get("resource"), dict)
             and (e.get("search") or {}).get("mode", "match") == "match"]
    if not found:
        return None
    study = _ours_first(found)
    subject = study.get("subject")
    if not isinstance(subject, dict) or not subject.get("reference"):
        return None
    return StudyContext({"reference": f"ImagingStudy/{study['id']}"},
                        {"reference": subject["reference"]},
                        [b for b in study.get("basedOn", []) or [] if isinstance(b, dict)])


def _ours(report: Mapping[str, Any]) -> bool:
    tags = (report.get("meta") or {}).get("tag", []) or []
    return any(t.get("system") == BRIDGE_TAG["system"] for t in tags) or any(
        i.get("system") == DICOM_UID_SYSTEM for i in report.get("identifier", []) or [])


async def ehr_reports(fhir: FhirClient, context: StudyContext) -> list[str]:
    """The EHR's own DiagnosticReports of the study's orders (``based-on``, R4
    DiagnosticReport search): not ours (no bridge tag, no DICOM UID identifier) and not
    entered in error, as ``DiagnosticReport/<id>``."""
    orders = [str(b["reference"]) for b in context.based_on
              if str(b.get("reference", "")).startswith("ServiceRequest/")]
    if not orders:
        return []
    bundle = await fhir.search("DiagnosticReport", [("based-on", ",".join(orders)),
                                                     ("_elements", "identifier,status")])
    found = [e["resource"] for e in bundle.get("entry", []) or []
             if isinstance(e.get("resource"), dict)
             and (e.get("search") or {}).get("mode", "match") == "match"]
    return [f"DiagnosticReport/{r['id']}" for r in found
            if not _ours(r) and r.get("status") != "entered-in-error"]


def _written(body: Mapping[str, Any]) -> list[str]:
    """The locations (``Type/id/_history/v``) of a transaction-response's entries."""
    out = []
    for entry in body.get("entry", []) or []:
        response = entry.get("response") or {}
        location = str(response.get("location") or "")
        out.append(location.split("/fhir/")[-1] if "://" in location else location)
    return out


@dataclass(frozen=True)
class RecordOutcome:
    """One run of the task for one study."""

    archive: str
    study_uid: str
    instances: dict[str, int]
    mapped: RecordResult | None
    written: list[str]

    def to_json(self) -> dict[str, Any]:
        """The task's result: counts, written locations, warnings (no patient data)."""
        warnings = list(self.mapped.warnings) if self.mapped else []
        return {"study_uid": self.study_uid, "archive": self.archive,
                "instances": self.instances, "written": self.written,
                "warning_count": len(warnings),
                "warnings": [w.to_json() for w in warnings[:MAX_KEPT_WARNINGS]]}


class RecordHandler:
    """Maps and writes one study's record per call (the ``record.map`` task handler)."""

    def __init__(self, *, archives: Mapping[str, DicomwebClient], fhir: FhirClient,
                 rules: DoseRules | None = None,
                 documents: Mapping[str, BulkDataReader] | None = None) -> None:
        self.archives = dict(archives)
        self.fhir = fhir
        self.rules = rules
        self._readers = dict(documents) if documents is not None else {
            name: BulkDataReader(a.settings) for name, a in self.archives.items()}

    async def aclose(self) -> None:
        """Close the bulk data readers (the archive and FHIR clients are the caller's)."""
        for reader in self._readers.values():
            await reader.aclose()

    async def __call__(self, task: KeyedTask) -> dict[str, Any]:
        archive, uid = parse_key(task.key)
        outcome = await self.record(archive, uid)
        log.info("record mapped", extra={
            "archive": archive, "study_uid": uid, "resources": len(outcome.written),
            "warnings": len(outcome.mapped.warnings) if outcome.mapped else 0})
        return outcome.to_json()

    def _archive(self, name: str) -> DicomwebClient:
        archive = self.archives.get(name)
        if archive is None:
            raise ConfigError(f"no archive named {name!r} is configured")
        return archive

    async def map(self, archive_name: str, study_uid: str
                  ) -> tuple[list[RecordInstance], StudyContext | None, RecordResult | None]:
        """Read and map without writing: the record instances, the study's references
        (``None`` when its ImagingStudy is not in the FHIR server: then nothing is mapped)
        and the mapped resources.  The study gone from the archive has no instances."""
        archive = self._archive(archive_name)
        try:
            instances = record_instances(await self._record_metadata(archive_name, archive,
                                                                     study_uid))
        except StudyGone:
            return [], None, None
        if not instances:
            return [], None, None
        context = await study_context(self.fhir, study_uid)
        if context is None:
            return instances, None, None
        documents, unread = await self._documents(archive_name, instances)
        mapped = map_study_record(instances, imaging_study=context.imaging_study,
                                  patient=context.patient, based_on=context.based_on,
                                  documents=documents, rules=self.rules)
        if unread:
            mapped = RecordResult(mapped.resources, (*unread, *mapped.warnings))
        if any(i.kind is not RecordKind.DOSE for i in instances):
            mapped = without_reports(mapped, await ehr_reports(self.fhir, context))
        return instances, context, mapped

    async def _record_metadata(self, name: str, archive: DicomwebClient, study_uid: str
                               ) -> list[dict[str, Any]]:
        """The metadata of the study's series that may hold its record (none of its
        images'); a series gone since it was listed is skipped."""
        series = await archive.study_series(study_uid)
        chosen = [uid for row in series
                  if (uid := first_str(row, tags.SERIES_INSTANCE_UID))
                  and first_str(row, tags.MODALITY) in (*RECORD_MODALITIES, None)]
        reader = self._readers.get(name)
        if reader is None:  # no reader of the archive: its whole metadata
            return await archive.study_instances(study_uid) if chosen else []
        found: list[dict[str, Any]] = []
        for uid in chosen:
            try:
                found += await reader.series_metadata(study_uid, uid)
            except StudyGone:
                continue
        return found

    async def record(self, archive: str, study_uid: str) -> RecordOutcome:
        """Map the study's record and write it (see the module docstring)."""
        instances, context, mapped = await self.map(archive, study_uid)
        counts = {kind.value: sum(1 for i in instances if i.kind is kind)
                  for kind in RecordKind}
        if instances and context is None:
            raise StudyNotInFhir(f"study {study_uid} has no ImagingStudy in the FHIR server "
                                 "yet; its record waits for it")
        written: list[str] = []
        if mapped is not None and mapped.resources:
            bundle = transaction(mapped.resources, tag=BRIDGE_TAG)
            resp = await self.fhir.request("POST", "", json=bundle, interaction="transaction",
                                           headers={"Prefer": "return=minimal"})
            written = _written(loads(resp.content))
        return RecordOutcome(archive, study_uid, counts, mapped, written)

    async def _documents(self, archive: str, instances: list[RecordInstance]
                         ) -> tuple[dict[str, bytes], list[RecordWarning]]:
        documents: dict[str, bytes] = {}
        warnings: list[RecordWarning] = []
        reader = self._readers.get(archive)
        for item in instances:
            uri = document_uri(item) if item.kind is RecordKind.PDF else None
            if uri is None or reader is None:
                continue
            try:
                documents[item.sop_uid] = await reader.read(uri)
            except DocumentUnreadable as exc:
                warnings.append(RecordWarning("document-unreadable",
                                              f"pdf {item.sop_uid}", exc.message))
        return documents, warnings
