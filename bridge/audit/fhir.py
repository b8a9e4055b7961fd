"""An :class:`AuditRecord` as a FHIR R4 AuditEvent, after IHE BALP (Basic Audit Log Patterns).

BALP's patterns (ITI BALP 1.1, ``IHE.BasicAudit.PatientRead`` / ``PatientQuery``): the
client is the agent with DICOM's Source Role ID (DCM 110153), the server the agent with
Destination Role ID (DCM 110152), the user (SMART ``fhirUser``, when the EHR said) the
requestor; ``source`` is this service; one entity for the patient (Person, role Patient)
and one per study (System Object, role Report, identified by its Study Instance UID,
DCM 110180, as DICOM PS3.15 A.5.3 does); a search adds the query entity (role Query,
base64 of the request's path and query).

The event codes are data (:data:`EVENT_CODES`): a DICOMweb request is a RESTful interaction
(BALP: type ``rest``, subtype from FHIR's restful-interaction) and additionally carries the
DICOM code of the same event (PS3.16 CID 400: 110112 Query, 110103 DICOM Instances
Accessed); a SMART launch is DICOM's User Authentication / Login (110114 / 110122).
Outcome (R4 AuditEvent.outcome): 0 permitted, 4 refused (minor failure: the request was
refused), 8 failed (serious failure: we could not answer).

The user and the patient are identified as the EHR names them; the user as an identifier
(a ``fhirUser`` URL is the EHR's, the audit server need not hold it).  A viewer token (minted
by the SMART app) names no user: the client agent's ``policy`` carries the app session's
reference (:func:`bridge.audit.record.session_ref`), as the app's launch record does, next
to the ``fhirUser``.
"""

from __future__ import annotations

import base64
from typing import Any

from bridge.audit.record import Action, AuditRecord, Outcome

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"

Coding = dict[str, str]


def _c(system: str, code: str, display: str) -> Coding:
    return {"system": system, "code": code, "display": display}


_REST = _c(EVENT_TYPE, "rest", "Restful Operation")
_SEARCH = _c(RESTFUL, "search-type", "search type")
_READ = _c(RESTFUL, "read", "read")
_QUERY = _c(DCM, "110112", "Query")
_ACCESSED = _c(DCM, "110103", "DICOM Instances Accessed")

#: action -> (type, subtypes, AuditEvent.action): R read, E execute (R4 audit-event-action)
EVENT_CODES: dict[Action, tuple[Coding, list[Coding], str]] = {
    Action.QUERY: (_REST, [_SEARCH, _QUERY], "E"),
    Action.READ: (_REST, [_READ, _ACCESSED], "R"),
    Action.INVOKE: (_ACCESSED, [], "R"),
    Action.VIEWER: (_ACCESSED, [], "R"),
    Action.HISTORY: (_REST, [_SEARCH, _QUERY], "E"),
    Action.LAUNCH: (_c(DCM, "110114", "User Authentication"),
                    [_c(DCM, "110122", "Login")], "E"),
}
OUTCOME_CODES = {Outcome.PERMITTED: "0", Outcome.REFUSED: "4", Outcome.FAILED: "8"}


def _patient_what(patient: str) -> dict[str, Any]:
    if "|" in patient:  # a viewer token may carry the identifier instead of the id
        system, _, value = patient.partition("|")
        return {"identifier": {"system": system, "value": value}}
    return {"reference": patient if patient.startswith("Patient/") else f"Patient/{patient}"}


def _outcome_desc(record: AuditRecord) -> str:
    text = record.outcome.value
    if record.reason:
        text += f" ({record.reason})"
    if record.detail:
        text += f": {record.detail}"
    return f"{text}; HTTP {record.status}"


def _agents(record: AuditRecord, *, observer: str, server_address: str | None
            ) -> list[dict[str, Any]]:
    actor = record.actor
    client: dict[str, Any] = {
        "type": {"coding": [_c(DCM, "110153", "Source Role ID")]},
        "who": ({"identifier": {"value": actor.client_id}, "display": actor.client_id}
                if actor.client_id else {"display": f"{actor.kind} client"}),
        "requestor": actor.user is None,
    }
    if actor.address:
        client["network"] = {"address": actor.address, "type": "2"}  # 2: IP address
    if actor.session:
        # BALP (OAuth patterns) identifies the authorization in agent.policy: here the
        # SMART app session, shared by the launch record that names the fhirUser
        client["policy"] = [actor.session]
    agents = [client]
    if actor.user:
        agents.insert(0, {
            "type": {"coding": [_c("http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                   "IRCP", "information recipient")]},
            "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": actor.user}},
            "requestor": True,
        })
    server: dict[str, Any] = {"type": {"coding": [_c(DCM, "110152", "Destination Role ID")]},
                              "who": {"display": observer}, "requestor": False}
    if server_address:
        server["network"] = {"address": server_address, "type": "5"}  # 5: URI
    agents.append(server)
    return agents


def _entities(record: AuditRecord) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if record.patient:
        entities.append({"what": _patient_what(record.patient),
                         "type": _c(ENTITY_TYPE, "1", "Person"),
                         "role": _c(OBJECT_ROLE, "1", "Patient")})
    for uid in record.studies:
        study: dict[str, Any] = {
            "what": {"identifier": {
                "type": {"coding": [_c(DCM, "110180", "Study Instance UID")]},
                "system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}},
            "type": _c(ENTITY_TYPE, "2", "System Object"),
            "role": _c(OBJECT_ROLE, "3", "Report"),
        }
        if record.archive:
            study["detail"] = [{"type": "archive", "valueString": record.archive}]
        entities.append(study)
    if record.query is not None:
        entities.append({
            "type": _c(ENTITY_TYPE, "2", "System Object"),
            "role": _c(OBJECT_ROLE, "24", "Query"),
            "query": base64.b64encode(record.query.encode()).decode("ascii"),
        })
    return entities


def audit_event(record: AuditRecord, *, observer: str, server_address: str | None = None
                ) -> dict[str, Any]:
    """The FHIR R4 AuditEvent of ``record``; ``observer`` names this service
    (AuditEvent.source), ``server_address`` is its public URL."""
    event_type, subtypes, action = EVENT_CODES[record.action]
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": event_type,
        "action": action,
        "recorded": record.recorded.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "outcome": OUTCOME_CODES[record.outcome],
        "outcomeDesc": _outcome_desc(record),
        "agent": _agents(record, observer=observer, server_address=server_address),
        "source": {"observer": {"display": f"{observer} ({record.source})"},
                   "type": [_c(SOURCE_TYPE, "4", "Application Server")]},
    }
    if subtypes:
        resource["subtype"] = subtypes
    entities = _entities(record)
    if entities:
        resource["entity"] = entities
    return resource
