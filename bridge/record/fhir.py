"""Small FHIR R4 building blocks shared by the dose and report mappings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.mapping.datetimes import fhir_datetime, parse_date, parse_offset, parse_time
from bridge.mapping.peek import first_str
from bridge.record.content import Code

JSON = dict[str, Any]

#: FHIR R4 ImagingStudy convention for DICOM UIDs (also used by the Radiation Dose Summary IG)
DICOM_UID_SYSTEM = "urn:dicom:uid"

#: Coding Scheme Designator -> FHIR system (PS3.16 section 8; FHIR R4 terminologies)
SCHEMES: dict[str, str] = {
    "DCM": "http://dicom.nema.org/resources/ontology/DCM",
    "SCT": "http://snomed.info/sct",
    "LN": "http://loinc.org",
    "UCUM": "http://unitsofmeasure.org",
}


def uid_identifier(uid: str) -> JSON:
    """Identifier for a DICOM UID: ``urn:dicom:uid`` system, ``urn:oid:<uid>`` value."""
    return {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{uid}"}


def coding(code: Code) -> JSON:
    """A Coding; an unknown scheme keeps its designator as a ``urn:dicom:scheme:`` system
    rather than being dropped, so the text of the code survives."""
    system = SCHEMES.get(code.scheme, f"urn:dicom:scheme:{code.scheme}")
    out: JSON = {"system": system, "code": code.value}
    if code.meaning:
        out["display"] = code.meaning
    return out


def concept(code: Code) -> JSON:
    """A CodeableConcept with one coding and the meaning as text."""
    out: JSON = {"coding": [coding(code)]}
    if code.meaning:
        out["text"] = code.meaning
    return out


def da_tm(ds: Mapping[str, Any], date_tag: str, time_tag: str,
          offset_minutes: int | None) -> str | None:
    """A FHIR dateTime from a DA and a TM attribute; date only without a zone."""
    raw_date = first_str(ds, date_tag)
    if raw_date is None:
        return None
    date, _ = parse_date(raw_date)
    if date is None:
        return None
    raw_time = first_str(ds, time_tag)
    time = parse_time(raw_time)[0] if raw_time else None
    return fhir_datetime(date, time, offset_minutes)


def dt_value(value: str | None, offset_minutes: int | None) -> str | None:
    """A FHIR dateTime from a DT value ``YYYYMMDDHHMMSS.FFFFFF&ZZXX`` (PS3.5 6.2); its own
    offset wins over ``offset_minutes``."""
    if not value or len(value) < 8:
        return None
    body, zone = value, None
    for sign in ("+", "-"):
        if sign in value[8:]:
            cut = value.index(sign, 8)
            body, zone = value[:cut], value[cut:]
    date, _ = parse_date(body[:8])
    if date is None:
        return None
    time = parse_time(body[8:])[0] if len(body) > 8 else None
    if zone is not None:
        offset_minutes = parse_offset(zone)[0]
    return fhir_datetime(date, time, offset_minutes)


def study_offset(ds: Mapping[str, Any], tag: str) -> int | None:
    """TimezoneOffsetFromUTC in minutes, if present and well-formed."""
    raw = first_str(ds, tag)
    return parse_offset(raw)[0] if raw else None
