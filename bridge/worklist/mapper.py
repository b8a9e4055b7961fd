"""FHIR R4 ServiceRequest + Patient -> DICOM Modality Worklist item; pure and deterministic.

The item carries the attributes of the Modality Worklist Information Model (PS3.4 K.6.1.2,
Table K.6-1): Patient (PS3.3 C.30.3 Patient Identification / Demographics), Imaging Service
Request (AccessionNumber, Placer/Filler Order Number, Referring Physician), Requested
Procedure (ID, Description, Code Sequence, Study Instance UID) and one Scheduled Procedure
Step (0040,0100).  Which order fields decide what is data (mappings/worklist.yaml).

No I/O, no clock, no randomness: the same order gives the same item, Study Instance UID
included (``2.25`` + a name-based UUID of the order's identity, PS3.5 B.2), so the modality
and the bridge agree on the study's UID without storing anything.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo
from collections.abc import Iterator, Mapping
from typing import Any

from pydicom.dataset import Dataset

from bridge.mapping.names import components
from bridge.worklist.errors import OrderDataError, UnmappableStation
from bridge.worklist.model import IdentifierRule, IdSource, StationRule, WorklistMapping

Json = Mapping[str, Any]

_SEX = {"male": "M", "female": "F", "other": "O"}
#: the longest Short String (SH, PS3.5 6.2): ids longer than this cannot be written
_SH = 16
#: a literal reference to a Patient, relative or absolute, maybe versioned (FHIR R4 3.1.3.3)
_PATIENT_REF = re.compile(r"(?:^|/)Patient/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
#: a UID: dot-separated numbers without leading zeros (PS3.5 9.1)
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def _codings(concept: Any) -> Iterator[Json]:
    if isinstance(concept, Mapping):
        for coding in concept.get("coding") or ():
            if isinstance(coding, Mapping):
                yield coding


def _identifier(sr: Json, rule: IdentifierRule) -> Json | None:
    for ident in sr.get("identifier") or ():
        if not isinstance(ident, Mapping) or not ident.get("value"):
            continue
        if ident.get("system") in rule.systems:
            return ident
        if any(c.get("code") == rule.type_code for c in _codings(ident.get("type"))):
            return ident
    return None


def _id_value(sr: Json, mapping: WorklistMapping, source: IdSource) -> str | None:
    if source == "id":
        value = sr.get("id")
        return str(value) if value else None
    ident = _identifier(sr, getattr(mapping.identifiers, source))
    return str(ident["value"]) if ident else None


def _existing_uid(sr: Json, system: str) -> str | None:
    if not system:
        return None
    for ident in sr.get("identifier") or ():
        if isinstance(ident, Mapping) and ident.get("system") == system and ident.get("value"):
            uid = str(ident["value"]).removeprefix("urn:oid:")
            if len(uid) > 64 or not _UID.fullmatch(uid):
                raise OrderDataError(f"not a DICOM UID (PS3.5 9.1): {uid!r}",
                                     field=f"ServiceRequest.identifier({system})")
            return uid
    return None


def study_instance_uid(sr: Json, mapping: WorklistMapping) -> str:
    """The order's Study Instance UID: the one the order carries (an identifier of
    ``study_uid.existing_uid_system``), else ``2.25.`` + the integer of a UUID v5 of the
    configured namespace and the order's identity (``placer|system|value`` and so on),
    PS3.5 B.2."""
    existing = _existing_uid(sr, mapping.study_uid.existing_uid_system)
    if existing:
        return existing
    for source in mapping.study_uid.identity_from:
        if source == "id":
            value = sr.get("id")
            identity = f"id|ServiceRequest/{value}" if value else None
        else:
            ident = _identifier(sr, getattr(mapping.identifiers, source))
            identity = f"{source}|{ident.get('system', '')}|{ident['value']}" if ident else None
        if identity:
            return f"2.25.{uuid.uuid5(mapping.study_uid.namespace, identity).int}"
    raise OrderDataError("no identity to derive the Study Instance UID from (looked for "
                         f"{', '.join(mapping.study_uid.identity_from)})",
                         field="ServiceRequest.identifier")


def _short(value: str | None, field: str) -> str:
    if value is None:
        raise OrderDataError("missing", field=field)
    if len(value) > _SH:
        raise OrderDataError(f"{len(value)} characters, over the 16 of a DICOM SH value",
                             field=field)
    return value


def _check_subject(sr: Json, patient: Json | None) -> Json:
    subject = sr.get("subject")
    ref = subject.get("reference") if isinstance(subject, Mapping) else None
    found = _PATIENT_REF.search(str(ref or ""))
    if found is None:
        raise OrderDataError("the order names no Patient", field="ServiceRequest.subject")
    if patient is None:
        raise OrderDataError(f"{ref} was not found", field="ServiceRequest.subject")
    if patient.get("id") and found.group(1) != str(patient["id"]):
        raise OrderDataError(f"{ref} is not the Patient given ({patient['id']})",
                             field="ServiceRequest.subject")
    return patient


def _person_name(patient: Json) -> str:
    """HumanName -> PN ``family^given^middle^prefix^suffix`` (PS3.5 6.2.1.1); the
    ``official`` name first, else the first."""
    names = [n for n in patient.get("name") or () if isinstance(n, Mapping)]
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    if name is None:
        return ""
    given = [str(g) for g in name.get("given") or ()]
    parts = [str(name.get("family") or ""), given[0] if given else "", " ".join(given[1:]),
             " ".join(str(p) for p in name.get("prefix") or ()),
             " ".join(str(s) for s in name.get("suffix") or ())]
    return "^".join(parts).rstrip("^")


def _patient_id(patient: Json, mapping: WorklistMapping) -> tuple[str, str]:
    idents = [i for i in patient.get("identifier") or ()
              if isinstance(i, Mapping) and i.get("value")]
    wanted = mapping.patient.identifier_types
    chosen = next((i for i in idents
                   if any(c.get("code") in wanted for c in _codings(i.get("type")))), None)
    chosen = chosen or next((i for i in idents if i.get("system") in mapping.patient.issuers),
                            None)
    chosen = chosen or (idents[0] if idents else None)
    if chosen is None:
        raise OrderDataError("the Patient has no identifier", field="Patient.identifier")
    issuer = mapping.patient.issuers.get(str(chosen.get("system")), "")
    return str(chosen["value"]), issuer


def _chosen_system(patient: Json, mapping: WorklistMapping, pid: str) -> str:
    return next((str(i.get("system") or "") for i in patient.get("identifier") or ()
                 if isinstance(i, Mapping) and i.get("value") == pid), "")


def _oid_issuer(system: str) -> Dataset | None:
    """An item with ``system``'s OID as Universal Entity ID of type ISO (PS3.3 10.14),
    when ``system`` is ``urn:oid:<oid>``; the sync reads it back as that system."""
    oid = system.removeprefix("urn:oid:") if system.startswith("urn:oid:") else ""
    if not oid or len(oid) > 64 or not _UID.fullmatch(oid):
        return None
    issuer = Dataset()
    issuer.UniversalEntityID = oid
    issuer.UniversalEntityIDType = "ISO"
    return issuer


def _station(sr: Json, mapping: WorklistMapping) -> StationRule:
    for field in mapping.station_fields:
        concepts = sr.get(field) or ()
        concepts = concepts if isinstance(concepts, list) else [concepts]
        for concept in concepts:
            for coding in _codings(concept):
                for rule in mapping.stations:
                    if (rule.field == field and rule.system == coding.get("system")
                            and rule.code == coding.get("code")):
                        return rule
    looked = " or ".join(f"ServiceRequest.{f}" for f in mapping.station_fields)
    raise UnmappableStation(f"no row of the station table matches {looked}",
                            field=f"ServiceRequest.{mapping.station_fields[0]}")


def _code_item(coding: Json, mapping: WorklistMapping, text: str | None) -> Dataset | None:
    scheme = mapping.coding_schemes.get(str(coding.get("system")))
    if scheme is None or not coding.get("code"):
        return None
    item = Dataset()
    item.CodeValue = str(coding["code"])
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = str(coding.get("display") or text or coding["code"])[:64]
    return item


def _procedure_code(sr: Json, mapping: WorklistMapping) -> tuple[Dataset | None, str]:
    code = sr.get("code") if isinstance(sr.get("code"), Mapping) else {}
    text = (code or {}).get("text")
    item = next((i for c in _codings(code) if (i := _code_item(c, mapping, text))), None)
    description = str(text or (item.CodeMeaning if item else ""))[:64]
    return item, description


def _protocol_code(sr: Json, mapping: WorklistMapping, requested: Dataset | None) -> Dataset | None:
    for detail in sr.get("orderDetail") or ():
        for coding in _codings(detail):
            if (item := _code_item(coding, mapping, detail.get("text"))) is not None:
                return item
    return requested


def _start(sr: Json, mapping: WorklistMapping) -> tuple[str, str]:
    """ScheduledProcedureStepStartDate/Time (DA, TM) in the modalities' time zone."""
    raw = sr.get("occurrenceDateTime")
    if raw is None and isinstance(sr.get("occurrencePeriod"), Mapping):
        raw = sr["occurrencePeriod"].get("start")
    field = "ServiceRequest.occurrence[x]"
    if not raw:
        raise OrderDataError("the order has no scheduled date/time", field=field)
    try:
        when = dt.datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise OrderDataError(f"not a FHIR dateTime: {raw!r}", field=field) from exc
    if len(str(raw)) <= 10:  # a date only: scheduled that day, time unknown
        return when.strftime("%Y%m%d"), ""
    if when.tzinfo is not None:
        when = when.astimezone(zoneinfo.ZoneInfo(mapping.timezone))
    return when.strftime("%Y%m%d"), when.strftime("%H%M%S")


def _referrer(sr: Json, practitioner: Json | None) -> str:
    """ReferringPhysicianName (0008,0090): the requester's HumanName when the Practitioner
    is given, else its Reference.display."""
    if practitioner is not None and _person_name(practitioner):
        return _person_name(practitioner)
    requester = sr.get("requester")
    display = requester.get("display") if isinstance(requester, Mapping) else None
    if not display:
        return ""
    # a display "Jane Smith" is not structured: written as the family component only
    # would misplace the given name, so "Given Family" becomes "Family^Given"
    words = str(display).split()
    return "^".join(components(f"{words[-1]}^{' '.join(words[:-1])}")).rstrip("^")


def _accession_issuer(sr: Json, mapping: WorklistMapping) -> Dataset | None:
    """Issuer of Accession Number Sequence (0008,0051, PS3.3 10.14): the site's local
    namespace (``accession_issuer``) and, when the order's accession identifier has an OID
    system (``urn:oid:``), that OID as Universal Entity ID of type ISO.  The modality copies
    the sequence into the images (IHE RAD TF-2 4.8 "Attribute Value Correspondence"), and
    the sync reads an ISO Universal Entity ID back as the system ``urn:oid:<oid>``
    (``accession.universal_entity_id_as_system``): the study's accession is then the
    order's identifier, system and value, and links to it exactly."""
    ident = _identifier(sr, mapping.identifiers.accession)
    universal = _oid_issuer(str(ident.get("system") or "") if ident else "")
    if not mapping.accession_issuer and universal is None:
        return None
    issuer = Dataset()
    if mapping.accession_issuer:
        issuer.LocalNamespaceEntityID = mapping.accession_issuer
    if universal is not None:
        issuer.UniversalEntityID = universal.UniversalEntityID
        issuer.UniversalEntityIDType = universal.UniversalEntityIDType
    return issuer


def map_order(service_request: Json, patient: Json | None, mapping: WorklistMapping, *,
              requester: Json | None = None) -> Dataset:
    """Map one order to a Modality Worklist item (a pydicom Dataset, text as str).

    ``patient`` is the order's subject (None: not found); ``requester`` the Practitioner
    the order's ``requester`` references, when the caller read it (else its display).

    Raises :class:`OrderDataError` naming the FHIR field when the order cannot be scheduled:
    no subject Patient, no scheduled time, no accession, an id too long for SH, and
    :class:`UnmappableStation` when no station table row matches.
    """
    sr = service_request
    pat = _check_subject(sr, patient)
    station = _station(sr, mapping)
    item = Dataset()
    pid, issuer = _patient_id(pat, mapping)
    item.PatientName = _person_name(pat)
    if len(pid) > 64:  # LO, PS3.5 6.2
        raise OrderDataError("over the 64 characters of a DICOM LO value",
                             field="Patient.identifier")
    item.PatientID = pid
    item.IssuerOfPatientID = issuer
    qualifiers = _oid_issuer(_chosen_system(pat, mapping, pid))
    if qualifiers is not None:
        # Issuer of Patient ID Qualifiers Sequence (0010,0024): copied into the images,
        # the sync reads the OID back as Patient.identifier.system (PS3.3 C.7.1.1)
        item.IssuerOfPatientIDQualifiersSequence = [qualifiers]
    birth = str(pat.get("birthDate") or "")
    item.PatientBirthDate = birth.replace("-", "") if len(birth) == 10 else ""
    item.PatientSex = _SEX.get(str(pat.get("gender")), "")

    accession = _short(_id_value(sr, mapping, "accession"), "ServiceRequest.identifier(ACSN)")
    item.AccessionNumber = accession
    issuer_item = _accession_issuer(sr, mapping)
    if issuer_item is not None:
        item.IssuerOfAccessionNumberSequence = [issuer_item]
    item.PlacerOrderNumberImagingServiceRequest = _id_value(sr, mapping, "placer") or ""
    item.FillerOrderNumberImagingServiceRequest = _id_value(sr, mapping, "filler") or ""
    item.ReferringPhysicianName = _referrer(sr, requester)
    item.RequestedProcedurePriority = next(
        (term for code, term in mapping.priorities.items() if code == sr.get("priority")), "")

    requested, description = _procedure_code(sr, mapping)
    rp_id = _id_value(sr, mapping, mapping.requested_procedure_id_from)
    item.RequestedProcedureID = _short(rp_id, f"requested procedure id "
                                              f"({mapping.requested_procedure_id_from})")
    item.RequestedProcedureDescription = description
    item.RequestedProcedureCodeSequence = [requested] if requested else []
    item.StudyInstanceUID = study_instance_uid(sr, mapping)

    date, time = _start(sr, mapping)
    step = Dataset()
    step.ScheduledStationAETitle = station.station_ae
    step.ScheduledStationName = station.station_name
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = time
    step.Modality = station.modality
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = description
    step.ScheduledProcedureStepID = _short(
        _id_value(sr, mapping, mapping.scheduled_step_id_from),
        f"scheduled step id ({mapping.scheduled_step_id_from})")
    protocol = _protocol_code(sr, mapping, requested)
    step.ScheduledProtocolCodeSequence = [protocol] if protocol else []
    step.ScheduledProcedureStepStatus = "SCHEDULED"
    item.ScheduledProcedureStepSequence = [step]
    return item
