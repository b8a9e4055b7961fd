"""What a mapping run returns: the resources, the links the sync resolves, and the warnings.

Everything here is plain data (frozen dataclasses of JSON-ready dicts), so a result can be
compared, hashed and recorded without touching the engine again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

JSON = dict[str, Any]

#: HL7 v2 table 0203 identifier types (FHIR R4 http://terminology.hl7.org/CodeSystem/v2-0203)
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_TYPE_DISPLAY = {
    "ACSN": "Accession ID",
    "PLAC": "Placer Identifier",
    "FILL": "Filler Identifier",
    "MR": "Medical record number",
}

PatientPolicy = Literal["match", "create", "identifier-only"]
RequestKind = Literal["ACSN", "PLAC", "FILL"]


def identifier_type(code: str) -> JSON:
    """Return the CodeableConcept for a v2-0203 identifier type code (ACSN, PLAC, FILL, MR)."""
    return {"coding": [{"system": V2_0203, "code": code, "display": _TYPE_DISPLAY[code]}]}


@dataclass(frozen=True, slots=True)
class MappingWarning:
    """A value the mapping could not use; the resource was produced without it.

    ``tag`` names the attribute as ``(gggg,eeee) Keyword``; ``value`` is the offending value
    (shortened, ``None`` when the attribute was absent); ``problem`` says what is wrong (a
    sentence that never contains the value) and ``code`` is its stable name from
    :data:`bridge.mapping.problems.WARNING_CODES`; ``where`` names the series or instance when
    the value is not study-level.  ``sensitive`` marks values that identify the patient
    (names, IDs, birth date): log them redacted.
    """

    tag: str
    value: str | None
    problem: str
    code: str
    where: str | None = None
    sensitive: bool = False

    def __str__(self) -> str:
        value = "<redacted>" if self.sensitive else repr(self.value)
        place = f" [{self.where}]" if self.where else ""
        return f"{self.tag} {value}: {self.problem}{place}"


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """The archive whose WADO-RS base URL the Endpoint resource describes.

    ``id_or_ref`` is a resolved reference (``Endpoint/xyz`` or ``urn:uuid:...``) when the sync
    knows it; otherwise ImagingStudy.endpoint is a logical reference by identifier.
    """

    address: str
    id_or_ref: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class PatientLink:
    """How the study's subject is found (or created) on the FHIR server.

    ``system``/``value`` come from PatientID (0010,0020) with the system chosen by the issuer
    via the mapping; ``value`` is ``None`` when the study carries no usable PatientID.
    Demographics are only needed by the ``create`` policy.
    """

    system: str
    value: str | None
    policy: PatientPolicy
    names: tuple[JSON, ...] = ()
    birth_date: str | None = None
    gender: str | None = None

    @property
    def identifier(self) -> JSON | None:
        """The Patient.identifier (typed MR) to search by or to create with."""
        if self.value is None:
            return None
        return {"type": identifier_type("MR"), "system": self.system, "value": self.value}

    @property
    def search_token(self) -> str | None:
        """``system|value`` as used in a FHIR token search (``Patient?identifier=``)."""
        return None if self.value is None else f"{self.system}|{self.value}"

    def reference(self) -> JSON:
        """A logical Reference(Patient) by identifier (FHIR R4 Reference.identifier)."""
        if self.value is None:
            return {"type": "Patient", "display": "unidentified patient"}
        return {"type": "Patient", "identifier": {"system": self.system, "value": self.value}}

    def resource(self) -> JSON:
        """A FHIR R4 Patient for the ``create`` policy (no id, no meta)."""
        patient: JSON = {"resourceType": "Patient"}
        if self.identifier is not None:
            patient["identifier"] = [self.identifier]
        if self.names:
            patient["name"] = [dict(name) for name in self.names]
        if self.gender is not None:
            patient["gender"] = self.gender
        if self.birth_date is not None:
            patient["birthDate"] = self.birth_date
        return patient


@dataclass(frozen=True, slots=True)
class ServiceRequestLink:
    """An order the study was performed for: accession (ACSN), placer (PLAC) or filler (FILL)."""

    kind: RequestKind
    system: str
    value: str

    @property
    def key(self) -> str:
        """``system|value``: the key of ``service_request_references`` and a FHIR token."""
        return f"{self.system}|{self.value}"

    @property
    def identifier(self) -> JSON:
        """The ServiceRequest.identifier, typed with v2-0203."""
        return {"type": identifier_type(self.kind), "system": self.system, "value": self.value}

    def reference(self) -> JSON:
        """A logical Reference(ServiceRequest) by identifier."""
        return {"type": "ServiceRequest", "identifier": self.identifier}


@dataclass(frozen=True, slots=True)
class MappingResult:
    """The outcome of :meth:`MappingEngine.map_study` for one study."""

    study_uid: str
    imaging_study: JSON
    endpoint: JSON
    patient: PatientLink
    service_requests: list[ServiceRequestLink]
    warnings: list[MappingWarning]
    content_hash: str
    #: ``full`` when instances are listed, ``none`` when the mapping or the size left them out
    instance_detail: Literal["full", "none"] = "full"

    def to_json(self) -> JSON:
        """Everything in the result as one JSON-ready document (preview, golden files)."""
        return {
            "studyInstanceUid": self.study_uid,
            "contentHash": self.content_hash,
            "instanceDetail": self.instance_detail,
            "imagingStudy": self.imaging_study,
            "endpoint": self.endpoint,
            "patient": {
                "policy": self.patient.policy,
                "searchToken": self.patient.search_token,
                "resource": self.patient.resource(),
            },
            "serviceRequests": [link.identifier for link in self.service_requests],
            "warnings": [
                {
                    "code": w.code,
                    "tag": w.tag,
                    "value": w.value,
                    "problem": w.problem,
                    "where": w.where,
                    "sensitive": w.sensitive,
                }
                for w in self.warnings
            ],
        }
