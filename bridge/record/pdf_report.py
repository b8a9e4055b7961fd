"""Encapsulated PDF report (DICOM JSON) -> FHIR R4 DiagnosticReport.

The Encapsulated Document IOD (PS3.3 A.45.1, module C.24.2) has no completion or
verification flags, so ``status`` is ``unknown`` unless the caller knows better (the EHR's
order status, a site rule).  ``code`` is the Concept Name (CID 7020 document title), else the
Document Title as text; ``presentedForm`` the document with its MIME type, title and creation
date-time; the bytes come from the Encapsulated Document's InlineBinary (PS3.18 F.2.7) or,
when the archive gave a BulkDataURI, from the caller who fetched it (the mapping does no I/O).
Encapsulated Document Length (0042,0015) trims the OB padding byte (PS3.5 6.2).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from bridge.mapping import tags
from bridge.mapping.peek import first_int, first_str, values
from bridge.record import sr_tags as st
from bridge.record.content import read_code, sop_instance_uid
from bridge.record.fhir import JSON, concept, da_tm, study_offset, uid_identifier
from bridge.record.report import DEFAULT_CODE, RAD_CATEGORY
from bridge.record.result import RecordResult, RecordWarning

ENCAPSULATED_DOCUMENT = "00420011"
MIME_TYPE = "00420012"
ENCAPSULATED_DOCUMENT_LENGTH = "00420015"


def _inline(ds: Mapping[str, Any]) -> bytes | None:
    element = ds.get(ENCAPSULATED_DOCUMENT)
    raw = element.get("InlineBinary") if isinstance(element, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return None


def map_pdf_report(
    ds: Mapping[str, Any],
    *,
    imaging_study: JSON,
    patient: JSON,
    document: bytes | None = None,
    status: str = "unknown",
    based_on: list[JSON] | None = None,
) -> RecordResult:
    """Map one Encapsulated PDF (or other encapsulated document) instance to a
    DiagnosticReport.

    :param document: the document bytes when the DICOM JSON holds a BulkDataURI instead of
        InlineBinary; given bytes win over InlineBinary.
    :param status: DiagnosticReport.status; the IOD carries none (see the module docstring).
    :raises DicomDataError: without a SOP Instance UID.
    """
    sop_uid = sop_instance_uid(ds, "the encapsulated document")
    warnings: list[RecordWarning] = []
    offset = study_offset(ds, tags.TIMEZONE_OFFSET_FROM_UTC)
    title = first_str(ds, tags.DOCUMENT_TITLE)
    names = values(ds, tags.CONCEPT_NAME_CODE_SEQUENCE)
    name = read_code(names[0]) if names and isinstance(names[0], dict) else None
    report: JSON = {"resourceType": "DiagnosticReport", "identifier": [uid_identifier(sop_uid)]}
    if based_on:
        report["basedOn"] = list(based_on)
    report["status"] = status
    report["category"] = [RAD_CATEGORY]
    report["code"] = concept(name) if name else ({"text": title} if title else DEFAULT_CODE)
    report["subject"] = patient
    effective = da_tm(ds, tags.STUDY_DATE, tags.STUDY_TIME, offset)
    if effective:
        report["effectiveDateTime"] = effective
    created = da_tm(ds, st.CONTENT_DATE, st.CONTENT_TIME, offset)
    if created and "T" in created:
        report["issued"] = created
    else:
        warnings.append(RecordWarning("issued-unknown", tags.label(st.CONTENT_TIME),
                                      "no content date-time with a zone"))
    report["imagingStudy"] = [imaging_study]
    data = document if document is not None else _inline(ds)
    if data is None:
        warnings.append(RecordWarning("document-absent", tags.label(ENCAPSULATED_DOCUMENT),
                                      "neither InlineBinary nor bytes from the caller"))
    else:
        length = first_int(ds, ENCAPSULATED_DOCUMENT_LENGTH)
        if length is not None and 0 <= length <= len(data):
            data = data[:length]
        form: JSON = {"contentType": first_str(ds, MIME_TYPE) or "application/pdf",
                      "data": base64.b64encode(data).decode("ascii")}
        if title:
            form["title"] = title
        if created:
            form["creation"] = created
        report["presentedForm"] = [form]
    return RecordResult((report,), tuple(warnings))
