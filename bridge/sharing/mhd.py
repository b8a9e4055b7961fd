"""IHE MHD ITI-65 Provide Document Bundle for one XDS-I.b manifest (pure: plain FHIR R4 JSON).

The bundle is a ``transaction`` (ITI-65, IHE ITI TF-2 3.65) of three entries:

* the SubmissionSet ``List`` (code ``submissionset``), listing the document;
* the ``DocumentReference`` carrying the XDS-I.b metadata (IHE RAD TF-3 RAD-68 with the
  ITI TF-3 4.2.3.2 DocumentEntry attributes as MHD maps them, ITI TF-2 3.65):
  mimeType ``application/dicom``, formatCode 1.2.840.10008.5.1.4.1.1.88.59 in
  urn:oid:1.2.840.10008.2.6.1 (the DICOM UID registry), typeCode, classCode,
  practiceSettingCode, healthcareFacilityTypeCode and confidentialityCode from the
  sharing policy, referenceIdList (Study Instance UID and accession) as
  ``context.related``, eventCodeList as the study's modalities (DCM), ``subject`` the
  patient in the affinity domain (a conditional reference by identifier), the local
  patient as ``context.sourcePatientInfo``, ``masterIdentifier`` = urn:oid:<KOS SOP
  Instance UID> (the XDS uniqueId);
* the ``Binary`` holding the KOS Part 10 bytes, which ``content.attachment.url`` names.

Idempotence: a retried publication must never register a second document.  The
DocumentReference and the List are conditional creates (``ifNoneExist``, FHIR R4 3.1.0.8)
on their unique identifiers, and every id in the bundle is derived from the KOS SOP
Instance UID (itself derived from the study's content, see bridge.sharing.uids); the
Binary is written by ``PUT Binary/<derived id>`` (an update as create, R4 3.1.0.4.3), so
a retry rewrites the same Binary instead of leaving an orphan beside the first one.  A
strict MHD Document Recipient may refuse a client-assigned Binary id: see docs/sharing.md.

Replacement and deprecation (ITI TF-2 3.65: XDS RPLC, Deprecated = ``superseded``):
:func:`replace_bundle` adds ``relatesTo`` replaces and marks the old DocumentReference
superseded in the same transaction; :func:`supersede_entry` alone deprecates one.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import uuid
from typing import Any

from bridge.sharing.identity import affinity_identifier
from bridge.sharing.kos import KOS_SOP_CLASS
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.study import StudyFacts

JSON = dict[str, Any]

DICOM_MIME = "application/dicom"
#: the DICOM UID registry as a FHIR code system (formatCode of XDS-I.b documents)
DCMUID = "urn:oid:1.2.840.10008.2.6.1"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
RFC3986 = "urn:ietf:rfc:3986"
DICOM_UID_SYSTEM = "urn:dicom:uid"
MHD_LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
MHD_SOURCE_ID = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_NAMESPACE = uuid.UUID("0b7d6a33-7c44-4b8e-a8c7-4a0e5f1d2c19")
_SOURCE_PATIENT = "sourcePatient"


def _uuid(role: str, manifest_uid: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{role}\x1f{manifest_uid}")


def binary_id(manifest_uid: str) -> str:
    """The Binary's id: a FHIR id (R4 2.24.0.1 id: [A-Za-z0-9\\-\\.]{1,64}) derived from the
    manifest's UID."""
    return f"kos-{_uuid('binary', manifest_uid).hex}"


def submission_set_uid(manifest_uid: str) -> str:
    """The SubmissionSet uniqueId (an OID, ITI TF-3 4.2.3.3), derived from the manifest."""
    return f"2.25.{_uuid('submissionset', manifest_uid).int}"


def master_identifier(manifest_uid: str) -> JSON:
    """DocumentReference.masterIdentifier: the XDS uniqueId, the KOS SOP Instance UID."""
    return {"system": RFC3986, "value": f"urn:oid:{manifest_uid}"}


def patient_reference(identifier: JSON) -> JSON:
    """A conditional reference to the Patient with ``identifier`` (R4 3.1.0.11.2): the
    document recipient resolves it when it processes the transaction."""
    return {"reference": f"Patient?identifier={identifier['system']}|{identifier['value']}"}


def _coding(coding: Any) -> JSON:
    out = {"system": coding.system, "code": coding.code}
    if coding.display:
        out["display"] = coding.display
    return out


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("created must be timezone-aware")
    return value.isoformat(timespec="seconds")


def _study_date(value: str | None) -> str | None:
    """DA (PS3.5 6.2, YYYYMMDD) as a FHIR date; None for anything else."""
    if value is None or len(value) != 8 or not value.isdigit():
        return None
    return f"{value[:4]}-{value[4:6]}-{value[6:]}"


def _related(study: StudyFacts, accession: JSON | None) -> list[JSON]:
    related: list[JSON] = [{"identifier": {"system": DICOM_UID_SYSTEM,
                                           "value": f"urn:oid:{study.study_uid}"}}]
    if accession is None and study.accession_number is not None:
        accession = {"value": study.accession_number}
    if accession is not None:
        typed = {"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]}, **accession}
        related.append({"identifier": typed})
    return related


def manifest_sop_uid(manifest: JSON) -> str:
    """The SOP Instance UID (0008,0018) of a manifest in DICOM JSON."""
    return str(manifest["00080018"]["Value"][0])


def document_reference(
    manifest: JSON,
    part10: bytes,
    study: StudyFacts,
    *,
    policy: SharingPolicy,
    attachment_url: str,
    created: dt.datetime,
    accession: JSON | None = None,
    source_patient: JSON | None = None,
) -> JSON:
    """The DocumentReference of the manifest (see the module docstring for each element).

    ``accession``: the accession's FHIR Identifier (system chosen by the main mapping);
    without it the accession number goes without a system.  ``source_patient``: the local
    patient's Identifier; without it, the PatientID without a system.
    """
    manifest_uid = manifest_sop_uid(manifest)
    document = policy.document
    local = source_patient if source_patient is not None else {"value": study.patient_id}
    context: JSON = {}
    if study.modalities:
        context["event"] = [{"coding": [{"system": DCM, "code": m}]} for m in study.modalities]
    started = _study_date(study.study_date)
    if started is not None:
        context["period"] = {"start": started}
    context["facilityType"] = {"coding": [_coding(document.facility_type)]}
    context["practiceSetting"] = {"coding": [_coding(document.practice_setting)]}
    context["sourcePatientInfo"] = {"reference": f"#{_SOURCE_PATIENT}"}
    context["related"] = _related(study, accession)
    resource: JSON = {
        "resourceType": "DocumentReference",
        "contained": [{"resourceType": "Patient", "id": _SOURCE_PATIENT, "identifier": [local]}],
        "masterIdentifier": master_identifier(manifest_uid),
        "identifier": [{"use": "official", "system": RFC3986,
                        "value": f"urn:uuid:{_uuid('documententry', manifest_uid)}"}],
        "status": "current",
        "type": {"coding": [_coding(document.type)]},
        "category": [{"coding": [_coding(document.class_)]}],
        "subject": patient_reference(affinity_identifier(policy.affinity_domain, study)),
        "date": _instant(created),
        "securityLabel": [{"coding": [_coding(document.confidentiality)]}],
        "content": [{
            "attachment": {
                "contentType": DICOM_MIME,
                "url": attachment_url,
                "size": len(part10),
                # R4 Attachment.hash: base64 of the SHA-1 of the data
                "hash": base64.b64encode(hashlib.sha1(part10).digest()).decode("ascii"),
                "creation": _instant(created),
            },
            "format": {"system": DCMUID, "code": KOS_SOP_CLASS,
                       "display": "Key Object Selection Document"},
        }],
        "context": context,
    }
    if policy.source.name:
        # MHD DocumentEntry.author (authorInstitution): the site partners see as source
        resource["author"] = [{"display": policy.source.name}]
    if study.study_description:
        resource["description"] = study.study_description
    return resource


def submission_set(manifest_uid: str, *, policy: SharingPolicy, subject: JSON,
                   created: dt.datetime, document_url: str) -> JSON:
    """The SubmissionSet List (ITI TF-2 3.65: code submissionset, sourceId extension)."""
    return {
        "resourceType": "List",
        "extension": [{"url": MHD_SOURCE_ID,
                       "valueIdentifier": {"value": policy.source.source_id}}],
        "identifier": [
            {"use": "usual", "system": RFC3986,
             "value": f"urn:oid:{submission_set_uid(manifest_uid)}"},
            {"use": "official", "system": RFC3986,
             "value": f"urn:uuid:{_uuid('submissionset-entry', manifest_uid)}"},
        ],
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": MHD_LIST_TYPES, "code": "submissionset"}]},
        "subject": subject,
        "date": _instant(created),
        "entry": [{"item": {"reference": document_url}}],
    }


def _if_none_exist(identifier: JSON) -> str:
    return f"identifier={identifier['system']}|{identifier['value']}"


def provide_bundle(
    manifest: JSON,
    part10: bytes,
    study: StudyFacts,
    *,
    policy: SharingPolicy,
    registry_url: str,
    created: dt.datetime,
    accession: JSON | None = None,
    source_patient: JSON | None = None,
) -> JSON:
    """The ITI-65 transaction Bundle registering ``manifest`` (DICOM JSON from
    bridge.sharing.kos.manifest_json; ``part10`` its file) at the document recipient
    ``registry_url`` (its FHIR base, which the Binary's attachment URL is absolute to, for
    ITI-68).

    Raises :class:`~bridge.sharing.errors.IdentityUnmapped` when the patient has no
    affinity-domain identifier.
    """
    manifest_uid = manifest_sop_uid(manifest)
    bin_id = binary_id(manifest_uid)
    document = document_reference(
        manifest, part10, study, policy=policy, created=created, accession=accession,
        attachment_url=f"{registry_url.rstrip('/')}/Binary/{bin_id}",
        source_patient=source_patient,
    )
    document_url = f"urn:uuid:{_uuid('documentreference', manifest_uid)}"
    listing = submission_set(manifest_uid, policy=policy, subject=document["subject"],
                             created=created, document_url=document_url)
    binary = {"resourceType": "Binary", "id": bin_id, "contentType": DICOM_MIME,
              "data": base64.b64encode(part10).decode("ascii")}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{_uuid('list', manifest_uid)}", "resource": listing,
             "request": {"method": "POST", "url": "List",
                         "ifNoneExist": _if_none_exist(listing["identifier"][0])}},
            {"fullUrl": document_url, "resource": document,
             "request": {"method": "POST", "url": "DocumentReference",
                         "ifNoneExist": _if_none_exist(document["masterIdentifier"])}},
            {"resource": binary, "request": {"method": "PUT", "url": f"Binary/{bin_id}"}},
        ],
    }


def document_entry(bundle: JSON) -> JSON:
    """The DocumentReference entry of a bundle built here."""
    return next(e for e in bundle["entry"]
                if e["resource"]["resourceType"] == "DocumentReference"
                and e["request"]["method"] == "POST")


def supersede_entry(old: JSON) -> JSON:
    """A transaction entry marking the stored DocumentReference ``old`` superseded (XDS
    Deprecated), guarded by its version (If-Match, R4 3.1.0.4.2) so a concurrent change is
    a 412 Conflict rather than lost."""
    resource = copy.deepcopy(old)
    resource["status"] = "superseded"
    request: JSON = {"method": "PUT", "url": f"DocumentReference/{old['id']}"}
    version = (old.get("meta") or {}).get("versionId")
    if version is not None:
        request["ifMatch"] = f'W/"{version}"'
    return {"resource": resource, "request": request}


def reinstate_entry(old: JSON) -> JSON:
    """A transaction entry making the stored DocumentReference ``old`` current again (XDS
    DocumentEntry status Deprecated -> Approved, ITI TF-2 3.57 Update Document Set), under
    If-Match like :func:`supersede_entry`."""
    entry = supersede_entry(old)
    entry["resource"]["status"] = "current"
    return entry


def replace_bundle(bundle: JSON, old: JSON) -> JSON:
    """``bundle`` (from :func:`provide_bundle`) as a replacement of the stored
    DocumentReference ``old``: the new one ``relatesTo`` replaces it, and the same
    transaction marks it superseded (XDS RPLC, ITI TF-2 3.65)."""
    out = copy.deepcopy(bundle)
    entry = document_entry(out)
    entry["resource"]["relatesTo"] = [{
        "code": "replaces", "target": {"reference": f"DocumentReference/{old['id']}"}}]
    out["entry"].append(supersede_entry(old))
    return out
