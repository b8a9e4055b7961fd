"""Identifiers: the Patient link, the ServiceRequest links and ImagingStudy.identifier.

Systems are chosen by issuer through the mapping (shared conventions): IssuerOfPatientID
(0010,0021) or IssuerOfPatientIDQualifiersSequence (0010,0024) for PatientID; the
IssuerOfAccessionNumberSequence (0008,0051) LocalNamespaceEntityID (0040,0031) or
UniversalEntityID (0040,0032) for AccessionNumber.
"""

from __future__ import annotations

from typing import Any

from bridge.mapping import charsets, names
from bridge.mapping import datetimes as dts
from bridge.mapping import dicom_json as dj
from bridge.mapping import patient_id as pid
from bridge.mapping import tags as t
from bridge.mapping import values as v
from bridge.mapping.context import StudyContext
from bridge.mapping.problems import Problem
from bridge.mapping.result import PatientLink, ServiceRequestLink

JSON = dict[str, Any]

UNKNOWN_ISSUER = Problem(
    "unknown-issuer", "unknown issuer: the mapping's default identifier system is used"
)
UNREADABLE_NAME = Problem(
    "undecodable-characters",
    "SpecificCharacterSet is not a defined term: characters may have been dropped or "
    "misread (PS3.5 6.1), left out",
)
UNKNOWN_SEX = Problem("unknown-sex", "not M, F or O (PS3.3 C.7.1.1): gender left out")
_GENDER = {"M": "male", "F": "female", "O": "other"}
_KIND_ORDER = {"ACSN": 0, "PLAC": 1, "FILL": 2}


def _issuer_system(
    ctx: StudyContext,
    issuers: dict[str, str],
    local: str | None,
    universal: str | None,
    universal_type: str | None,
    *,
    oid_fallback: bool,
    default: str,
    tag: str,
) -> str:
    if local is not None and local in issuers:
        return issuers[local]
    if universal is not None:
        if universal in issuers:
            return issuers[universal]
        # PS3.3 10.14: UniversalEntityIDType ISO means the ID is an ISO OID
        if oid_fallback and universal_type == "ISO" and v.check_uid(universal)[1] is None:
            return f"urn:oid:{universal}"
    if local is not None or universal is not None:
        ctx.sink.add(tag, local if local is not None else universal, UNKNOWN_ISSUER)
    return default


def _universal(ctx: StudyContext, item: dj.Dataset | None) -> tuple[str | None, str | None]:
    if item is None:
        return None, None
    universal = dj.text(item, t.UNIVERSAL_ENTITY_ID, "UT", ctx.sink)
    universal_type = dj.code_string(item, t.UNIVERSAL_ENTITY_ID_TYPE, ctx.sink)
    return universal, universal_type


def patient_link(ctx: StudyContext, ds: dj.Dataset) -> PatientLink:
    """The study's patient: identifier by issuer, demographics for the ``create`` policy.

    Raises :class:`~bridge.errors.DicomDataError` naming (0010,0020) PatientID when the
    PatientID is present but unusable (see :mod:`bridge.mapping.patient_id`).
    """
    sink, section = ctx.sink, ctx.mapping.patient
    character_set_known = charsets.is_known(ds, sink)
    patient_id = pid.read(ds, sink, character_set_known=character_set_known)
    qualifiers = dj.items(ds, t.ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE, sink)
    universal, universal_type = _universal(ctx, qualifiers[0] if qualifiers else None)
    system = _issuer_system(
        ctx,
        ctx.compiled.patient_issuers,
        dj.text(ds, t.ISSUER_OF_PATIENT_ID, "LO", sink),
        universal,
        universal_type,
        oid_fallback=section.universal_entity_id_as_system,
        default=section.default_system,
        tag=t.ISSUER_OF_PATIENT_ID,
    )
    groups = dj.pn_groups(ds, t.PATIENT_NAME, sink)
    if groups and not character_set_known:
        # a name read under a guessed character set ("Mller") would be written to a
        # created Patient as if it were right
        sink.add(t.PATIENT_NAME, groups[0].get("Alphabetic"), UNREADABLE_NAME)
        groups = []
    birth_date = None
    raw_birth = dj.text(ds, t.PATIENT_BIRTH_DATE, "DA", sink)
    if raw_birth is not None:
        date, problem = dts.parse_date(raw_birth)
        if date is None:
            sink.add(t.PATIENT_BIRTH_DATE, raw_birth, problem or dts.BAD_DATE)
        else:
            birth_date = date.text  # FHIR date allows YYYY and YYYY-MM
    gender = None
    sex = dj.code_string(ds, t.PATIENT_SEX, sink)
    if sex is not None:
        gender = _GENDER.get(sex)
        if gender is None:
            sink.add(t.PATIENT_SEX, sex, UNKNOWN_SEX)
    return PatientLink(
        system=system,
        value=patient_id,
        policy=section.policy,
        names=tuple(names.human_names(groups[0])) if groups else (),
        birth_date=birth_date,
        gender=gender,
    )


def _request_links(
    ctx: StudyContext, ds: dj.Dataset, inherited_issuer: tuple[str | None, ...] | None
) -> tuple[list[ServiceRequestLink], tuple[str | None, ...] | None]:
    sink, mapping = ctx.sink, ctx.mapping
    links: list[ServiceRequestLink] = []
    issuer_items = dj.items(ds, t.ISSUER_OF_ACCESSION_NUMBER_SEQUENCE, sink)
    issuer = inherited_issuer
    if issuer_items:
        local = dj.text(issuer_items[0], t.LOCAL_NAMESPACE_ENTITY_ID, "UT", sink)
        issuer = (local, *_universal(ctx, issuer_items[0]))
    accession = dj.text(ds, t.ACCESSION_NUMBER, "SH", sink)
    if accession is not None:
        local, universal, universal_type = issuer or (None, None, None)
        system = _issuer_system(
            ctx,
            ctx.compiled.accession_issuers,
            local,
            universal,
            universal_type,
            oid_fallback=mapping.accession.universal_entity_id_as_system,
            default=mapping.accession.default_system,
            tag=t.ISSUER_OF_ACCESSION_NUMBER_SEQUENCE,
        )
        links.append(ServiceRequestLink("ACSN", system, accession))
    placer = dj.text(ds, t.PLACER_ORDER_NUMBER, "LO", sink)
    if placer is not None:
        links.append(ServiceRequestLink("PLAC", mapping.orders.placer_system, placer))
    filler = dj.text(ds, t.FILLER_ORDER_NUMBER, "LO", sink)
    if filler is not None:
        links.append(ServiceRequestLink("FILL", mapping.orders.filler_system, filler))
    return links, issuer


def order_groups(ctx: StudyContext, ds: dj.Dataset) -> list[list[ServiceRequestLink]]:
    """The orders the study fulfils, each as its ACSN/PLAC/FILL identifiers.

    The top-level attributes form the first order; each item of RequestAttributesSequence
    (0040,0275) and ReferencedRequestSequence (0040,A370) another (an item without its own
    accession issuer inherits the top-level one).  Orders sharing an identifier are merged.
    """
    top, issuer = _request_links(ctx, ds, None)
    groups: list[list[ServiceRequestLink]] = [top] if top else []
    for tag in (t.REQUEST_ATTRIBUTES_SEQUENCE, t.REFERENCED_REQUEST_SEQUENCE):
        for item in dj.items(ds, tag, ctx.sink):
            links, _ = _request_links(ctx, item, issuer)
            if not links:
                continue
            for group in groups:
                if any(link in group for link in links):
                    group.extend(link for link in links if link not in group)
                    break
            else:
                groups.append(links)
    for group in groups:
        group.sort(key=lambda link: (_KIND_ORDER[link.kind], link.system, link.value))
    return groups


def based_on(groups: list[list[ServiceRequestLink]], resolved: dict[str, str] | None) -> list[JSON]:
    """ImagingStudy.basedOn: one reference per order, resolved by the sync when it could,
    else a logical reference by the order's first identifier (ACSN before PLAC before FILL)."""
    out: list[JSON] = []
    for group in groups:
        reference = group[0].reference()
        for link in group:
            if resolved and link.key in resolved:
                # the literal reference plus the identifier it was resolved from
                reference = {"reference": resolved[link.key], **link.reference()}
                break
        if reference not in out:
            out.append(reference)
    return out


def study_identifiers(
    ctx: StudyContext, study_uid: str, ds: dj.Dataset, groups: list[list[ServiceRequestLink]]
) -> list[JSON]:
    """ImagingStudy.identifier: Study Instance UID (urn:dicom:uid, FHIR R4 ImagingStudy
    notes), accession numbers typed ACSN, and StudyID as a secondary identifier."""
    out: list[JSON] = [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}]
    for group in groups:
        for link in group:
            if link.kind == "ACSN":
                entry = link.identifier
                if entry not in out:
                    out.append(entry)
    section = ctx.mapping.study_id
    if section.emit:
        study_id = dj.text(ds, t.STUDY_ID, "SH", ctx.sink)
        if study_id is not None:
            entry = {"use": "secondary", "value": study_id}
            if section.system is not None:
                entry["system"] = section.system
            out.append(entry)
    return out
