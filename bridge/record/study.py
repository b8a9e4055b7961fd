"""One study's record: pick its report, dose and encapsulated-document instances by SOP
Class, map each with the pure mappings, and lay the resources out as one FHIR transaction of
conditional updates keyed on their identifiers (so running it again never duplicates).

Pure: the caller gives the study's instances (WADO-RS metadata, PS3.18 10.4.1.1.2: the SR
content sequences are in it; an encapsulated document's bytes are a BulkDataURI, fetched by
the caller and passed as ``documents``) and the references the sync wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from bridge.errors import DicomDataError
from bridge.mapping import tags
from bridge.mapping.peek import first_str
from bridge.record.dose import map_dose_sr
from bridge.record.fhir import JSON
from bridge.record.pdf_report import ENCAPSULATED_DOCUMENT, map_pdf_report
from bridge.record.report import map_report_sr
from bridge.record.result import RecordResult, RecordWarning
from bridge.record.rules import DoseRules

__all__ = ["DOSE_SR_CLASSES", "ENCAPSULATED_PDF", "REPORT_SR_CLASSES", "RecordInstance",
           "RecordKind", "document_uri", "identifier_query", "map_study_record", "record_instances",
           "transaction", "without_reports"]

#: SR Storage SOP Classes read as reports (PS3.4 B.5): Basic Text, Enhanced,
#: Comprehensive, Comprehensive 3D, Extensible SR
REPORT_SR_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.34",
    "1.2.840.10008.5.1.4.1.1.88.35",
})
#: X-Ray Radiation Dose SR and Enhanced X-Ray Radiation Dose SR Storage (PS3.4 B.5)
DOSE_SR_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.88.67",
                             "1.2.840.10008.5.1.4.1.1.88.76"})
#: Encapsulated PDF Storage (PS3.4 B.5, IOD PS3.3 A.45.1)
ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


class RecordKind(StrEnum):
    """What an instance becomes."""

    REPORT = "report"
    DOSE = "dose"
    PDF = "pdf"


def _kind(sop_class: str | None) -> RecordKind | None:
    if sop_class in REPORT_SR_CLASSES:
        return RecordKind.REPORT
    if sop_class in DOSE_SR_CLASSES:
        return RecordKind.DOSE
    if sop_class == ENCAPSULATED_PDF:
        return RecordKind.PDF
    return None


@dataclass(frozen=True, slots=True)
class RecordInstance:
    """One instance of the study that the record maps."""

    kind: RecordKind
    sop_uid: str
    data: Mapping[str, Any]


def record_instances(instances: Iterable[Mapping[str, Any]]) -> list[RecordInstance]:
    """The study's report SRs, dose SRs and encapsulated PDFs, by SOP Class UID, in SOP
    Instance UID order (stable across runs); an instance without a SOP Instance UID is
    kept (its mapping says what is missing)."""
    found = []
    for instance in instances:
        kind = _kind(first_str(instance, tags.SOP_CLASS_UID))
        if kind is not None:
            found.append(RecordInstance(kind, first_str(instance, tags.SOP_INSTANCE_UID) or "",
                                        instance))
    return sorted(found, key=lambda i: (i.sop_uid, i.kind))


def document_uri(instance: RecordInstance) -> str | None:
    """The BulkDataURI of an encapsulated document (PS3.18 F.2.6), if the archive gave one
    instead of InlineBinary."""
    element = instance.data.get(ENCAPSULATED_DOCUMENT)
    uri = element.get("BulkDataURI") if isinstance(element, dict) else None
    return uri if isinstance(uri, str) and uri else None


def _map_one(item: RecordInstance, *, imaging_study: JSON, patient: JSON,
             based_on: list[JSON], documents: Mapping[str, bytes],
             rules: DoseRules | None) -> RecordResult:
    if item.kind is RecordKind.DOSE:
        return map_dose_sr(item.data, imaging_study=imaging_study, patient=patient,
                           rules=rules)
    if item.kind is RecordKind.REPORT:
        return map_report_sr(item.data, imaging_study=imaging_study, patient=patient,
                             based_on=based_on)
    return map_pdf_report(item.data, imaging_study=imaging_study, patient=patient,
                          document=documents.get(item.sop_uid), based_on=based_on)


def _identifier_key(resource: JSON) -> tuple[str, str, str] | None:
    for ident in resource.get("identifier", []) or []:
        if ident.get("system") and ident.get("value"):
            return resource["resourceType"], ident["system"], ident["value"]
    return None


def map_study_record(
    instances: Sequence[RecordInstance],
    *,
    imaging_study: JSON,
    patient: JSON,
    based_on: list[JSON] | None = None,
    documents: Mapping[str, bytes] | None = None,
    rules: DoseRules | None = None,
) -> RecordResult:
    """Map every record instance of one study; the resources are those that can be written
    idempotently (each has an identifier, no two share one).

    An instance the mappings refuse (:class:`DicomDataError`), a resource without an
    identifier (an irradiation event without its UID) and a second resource with an
    identifier already taken (an event reported by two dose SRs) are left out, each with a
    warning; the rest is kept.
    """
    resources: list[JSON] = []
    warnings: list[RecordWarning] = []
    seen: set[tuple[str, str, str]] = set()
    for item in instances:
        try:
            result = _map_one(item, imaging_study=imaging_study, patient=patient,
                              based_on=list(based_on or []), documents=documents or {},
                              rules=rules)
        except DicomDataError as exc:
            warnings.append(RecordWarning("instance-unmappable",
                                          f"{item.kind} {item.sop_uid or '?'}", exc.message))
            continue
        warnings += result.warnings
        for resource in result.resources:
            key = _identifier_key(resource)
            if key is None:
                warnings.append(RecordWarning(
                    "not-written", f"{resource['resourceType']} of {item.sop_uid}",
                    "no identifier to write it idempotently by"))
            elif key in seen:
                warnings.append(RecordWarning(
                    "duplicate-identifier", f"{key[0]} {key[2]}",
                    f"already mapped from another instance; the one in {item.sop_uid} "
                    "left out"))
            else:
                seen.add(key)
                resources.append(resource)
    return RecordResult(tuple(resources), tuple(warnings))


def without_reports(result: RecordResult, ehr_reports: Sequence[str]) -> RecordResult:
    """``result`` without its DiagnosticReports, each left out with a ``report-in-ehr``
    warning naming ``ehr_reports`` (the EHR's own reports of the study's orders): the
    issue's "reports that already live in the EHR are found, not duplicated".  The dose
    Observations stay."""
    if not ehr_reports:
        return result
    kept: list[JSON] = []
    warnings = list(result.warnings)
    for resource in result.resources:
        if resource["resourceType"] != "DiagnosticReport":
            kept.append(resource)
            continue
        key = _identifier_key(resource)
        warnings.append(RecordWarning(
            "report-in-ehr", f"DiagnosticReport {key[2] if key else '?'}",
            f"the EHR holds {', '.join(ehr_reports)} for the study's order"))
    return RecordResult(tuple(kept), tuple(warnings))


def identifier_query(system: str, value: str) -> str:
    """A token search value ``system|value``, URL-encoded, with ``|``, ``,`` and ``\\``
    escaped in the value (R4 3.1.1.5.2)."""
    escaped = value.replace("\\", "\\\\").replace("|", "\\|").replace(",", "\\,")
    return quote(f"{system}|{escaped}", safe="")


def transaction(resources: Iterable[JSON], *, tag: JSON | None = None) -> JSON:
    """A ``transaction`` Bundle (FHIR R4 3.1.0.11) of conditional updates, one per
    resource, keyed on its first identifier (``PUT Type?identifier=system|value``, R4
    3.1.0.4.3): created the first time, updated (or left at its version, when the server
    sees no change) after.  ``tag`` is added to each resource's ``meta.tag``.

    :raises ValueError: for a resource without identifier (:func:`map_study_record`
        leaves those out).
    """
    entries = []
    for resource in resources:
        key = _identifier_key(resource)
        if key is None:
            raise ValueError(f"a {resource.get('resourceType')} without identifier cannot be "
                             "written conditionally")
        body = dict(resource)
        if tag is not None:
            meta = dict(body.get("meta") or {})
            meta["tag"] = [*(t for t in meta.get("tag", []) if t != tag), tag]
            body["meta"] = meta
        entries.append({"resource": body, "request": {
            "method": "PUT", "url": f"{key[0]}?identifier={identifier_query(key[1], key[2])}"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}
