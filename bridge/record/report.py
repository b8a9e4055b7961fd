"""Basic Text SR report (DICOM JSON) -> FHIR R4 DiagnosticReport.

* ``identifier``: the SR's SOP Instance UID (``urn:dicom:uid``, ``urn:oid:``) - the key of
  idempotent writes, as the Study Instance UID is ImagingStudy's.
* ``status`` from the SR Document General module (PS3.3 C.17.2): Completion Flag PARTIAL ->
  ``partial``; COMPLETE and Verification Flag VERIFIED -> ``final``; COMPLETE and UNVERIFIED
  (or no flag) -> ``preliminary``.
* ``category`` RAD (HL7 v2 table 0074); ``code`` the root CONTAINER's concept name (for TID
  2000 a CID 7000 LOINC document title such as 18748-4).
* ``effectiveDateTime`` the study date-time; ``issued`` the last Verification DateTime, else
  the content date-time (an instant: left out, with a warning, when no zone is known).
* ``basedOn`` the order references the caller resolved (the ImagingStudy's).
* ``resultsInterpreter`` the verifying observers' names (display-only references).
* ``conclusion`` the Impression items (121073); ``presentedForm`` the whole text, section by
  section, as text/plain; ``imagingStudy`` the caller's reference.

An SR declaring a template other than TID 2000 still becomes a DiagnosticReport with the text
extracted from every TEXT item, and a warning naming the template.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from bridge.mapping import tags
from bridge.mapping.names import display
from bridge.mapping.peek import first_str, values
from bridge.record import sr_tags as st
from bridge.record.content import ContentItem, read_tree, sop_instance_uid, template_warnings
from bridge.record.fhir import JSON, concept, da_tm, dt_value, study_offset, uid_identifier
from bridge.record.result import RecordResult, RecordWarning

#: the template whose structure (findings / impressions) this mapping reads
REPORT_TEMPLATE = "2000"
RAD_CATEGORY: JSON = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                                  "code": "RAD", "display": "Radiology"}]}
#: no usable title: LOINC 18748-4 "Diagnostic imaging study" (CID 7000)
DEFAULT_CODE: JSON = {"coding": [{"system": "http://loinc.org", "code": "18748-4",
                                  "display": "Diagnostic imaging study"}]}


def report_status(completion: str | None, verification: str | None) -> str:
    """DiagnosticReport.status from the Completion and Verification Flags (C.17.2)."""
    if completion == "PARTIAL":
        return "partial"
    if completion == "COMPLETE" and verification == "VERIFIED":
        return "final"
    return "preliminary"


#: relationships that qualify or give context rather than state report content (C.17.3.2.4)
_CONTEXT = frozenset({"HAS CONCEPT MOD", "HAS OBS CONTEXT", "HAS ACQ CONTEXT"})


def _line(item: ContentItem, name: str) -> str | None:
    """One content item as a line of text: TEXT as it is; CODE (Enhanced / Comprehensive SR
    findings) as ``Concept: meaning``; NUM as ``Concept: value unit`` (C.18.1)."""
    if item.value_type == "TEXT":
        return item.text()
    if item.value_type == "CODE" and (value := item.code_value()) is not None:
        return f"{name}: {value.meaning or value.value}"
    if item.value_type == "NUM":
        number, unit = item.measured()
        if number is not None:
            suffix = f" {unit.value}" if unit is not None else ""
            return f"{name}: {number:g}{suffix}"
    return None


def _text_lines(root: ContentItem) -> list[str]:
    """The report as text: a heading per container, one line per TEXT, CODE or NUM item, in
    document order (observation context such as the language is not report text)."""
    lines: list[str] = []
    for item in root.walk():
        if item is root or first_str(item.raw, st.RELATIONSHIP_TYPE) in _CONTEXT:
            continue
        name = item.concept.meaning if item.concept else ""
        if item.value_type == "CONTAINER":
            if name:
                lines.append(f"{name}:")
        elif (line := _line(item, name)) is not None:
            lines.append(line)
    return lines


def _interpreters(ds: Mapping[str, Any]) -> tuple[list[JSON], str | None]:
    refs: list[JSON] = []
    last: str | None = None
    for observer in values(ds, st.VERIFYING_OBSERVER_SEQUENCE):
        if not isinstance(observer, dict):
            continue
        names = values(observer, st.VERIFYING_OBSERVER_NAME)
        name = display(names[0]) if names and isinstance(names[0], dict) else None
        if name:
            refs.append({"display": name})
        when = first_str(observer, st.VERIFICATION_DATETIME)
        if when and (last is None or when > last):
            last = when
    return refs, last


def map_report_sr(
    ds: Mapping[str, Any],
    *,
    imaging_study: JSON,
    patient: JSON,
    based_on: list[JSON] | None = None,
) -> RecordResult:
    """Map one text SR instance (DICOM JSON, PS3.18 F.2) to a DiagnosticReport.

    :param imaging_study: the Reference to the study's ImagingStudy.
    :param patient: the Reference to the Patient (``subject``).
    :param based_on: References to the order(s) (ServiceRequest) the report answers, as the
        sync resolves them for the ImagingStudy; none by default.
    :raises DicomDataError: without a SOP Instance UID.
    """
    sop_uid = sop_instance_uid(ds, "the report SR")
    warnings = template_warnings(ds, frozenset({REPORT_TEMPLATE}), assumed="read as TID 2000",
                                 otherwise="text extracted from every TEXT item")
    root = read_tree(ds)
    offset = study_offset(ds, tags.TIMEZONE_OFFSET_FROM_UTC)
    report: JSON = {
        "resourceType": "DiagnosticReport",
        "identifier": [uid_identifier(sop_uid)],
    }
    if based_on:
        report["basedOn"] = list(based_on)
    report["status"] = report_status(first_str(ds, st.COMPLETION_FLAG),
                                     first_str(ds, st.VERIFICATION_FLAG))
    report["category"] = [RAD_CATEGORY]
    report["code"] = concept(root.concept) if root.concept else DEFAULT_CODE
    report["subject"] = patient
    effective = da_tm(ds, tags.STUDY_DATE, tags.STUDY_TIME, offset)
    if effective:
        report["effectiveDateTime"] = effective
    interpreters, verified_at = _interpreters(ds)
    issued = dt_value(verified_at, offset) if verified_at else None
    if issued is None or "T" not in issued:
        issued = da_tm(ds, st.CONTENT_DATE, st.CONTENT_TIME, offset)
    if issued and "T" in issued:
        report["issued"] = issued
    else:
        warnings.append(RecordWarning("issued-unknown", tags.label(st.VERIFICATION_DATETIME),
                                      "no date-time with a zone"))
    if interpreters:
        report["resultsInterpreter"] = interpreters
    report["imagingStudy"] = [imaging_study]
    impressions = [i.text() for i in root.walk()
                   if i.value_type == "TEXT" and i.is_concept("DCM", "121073") and i.text()]
    if impressions:
        report["conclusion"] = "\n".join(t for t in impressions if t)
    lines = _text_lines(root)
    if any(not line.endswith(":") for line in lines):
        text = "\n".join(lines) + "\n"
        form: JSON = {"contentType": "text/plain; charset=utf-8",
                      "data": base64.b64encode(text.encode("utf-8")).decode("ascii")}
        if root.concept and root.concept.meaning:
            form["title"] = root.concept.meaning
        report["presentedForm"] = [form]
    else:
        warnings.append(RecordWarning("report-text-empty", root.where(),
                                      "no TEXT, CODE or NUM items"))
    return RecordResult((report,), tuple(warnings))
