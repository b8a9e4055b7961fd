"""The typed mapping: what mappings/*.yaml may say, validated at start-up.

One pydantic model per YAML section; unknown keys are errors (``extra="forbid"``) so a typo
in a site file is caught instead of silently ignored.  :mod:`bridge.mapping.loader` turns
validation errors into ``file:line key: message``.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, field_validator

#: the systems FHIR R4 expects (2.24.0.1 uri; 2.1.0.2 "Using Codes": a code system is named
#: by an http(s) URL or a URN, urn:oid: / urn:uuid: for OIDs and UUIDs): an http(s) URL with
#: a host (RFC 3986 3.2 authority), or a URN ``urn:<NID>:<NSS>`` (RFC 8141 2).  RFC 3986
#: alone would accept ``htp:/loinc`` (scheme ``htp``, an absolute path), a typo that would
#: make every coding it is in unrecognisable to the EHR.
_HTTP_URL = re.compile(r"https?://[^\s/?#@]+(?:[/?#][^\s]*)?", re.IGNORECASE)
_URN = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:[^\s]+", re.IGNORECASE)
_OID_URN = re.compile(r"urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+", re.IGNORECASE)
_UUID_URN = re.compile(r"urn:uuid:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.IGNORECASE)


def _check_uri(value: str) -> str:
    lowered = value.lower()
    if lowered.startswith("urn:oid:"):
        ok = _OID_URN.fullmatch(value) is not None
    elif lowered.startswith("urn:uuid:"):
        ok = _UUID_URN.fullmatch(value) is not None
    else:
        ok = _HTTP_URL.fullmatch(value) is not None or _URN.fullmatch(value) is not None
    if not ok:
        raise ValueError(f"not a URI: {value!r} is neither an http(s) URL with a host nor a "
                         "URN (urn:...), e.g. http://loinc.org or urn:oid:1.2.3")
    return value


def _check_nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Uri = Annotated[str, AfterValidator(_check_uri)]
NonEmpty = Annotated[str, AfterValidator(_check_nonempty)]


class Section(BaseModel):
    """Base of every section: immutable, unknown keys rejected, numbers accepted as text."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Coding(Section):
    """A FHIR Coding written in the mapping (code map targets, payload types)."""

    system: Uri
    code: NonEmpty
    display: str | None = None


class Issuer(Section):
    """The identifier system for one issuer (IssuerOfPatientID or accession issuer)."""

    system: Uri


class PatientSection(Section):
    """Patient identifiers and the policy the sync applies to find the subject."""

    #: match: the Patient must exist (found by identifier); create: create it from the DICOM
    #: demographics when missing; identifier-only: never look up, reference by identifier.
    policy: Literal["match", "create", "identifier-only"] = "match"
    default_system: Uri = "urn:imaging-bridge:patient-id"
    #: keyed by IssuerOfPatientID (0010,0021) or by UniversalEntityID (0040,0032) of the
    #: IssuerOfPatientIDQualifiersSequence (0010,0024)
    issuers: dict[str, Issuer] = Field(default_factory=dict)
    #: an unlisted ISO UniversalEntityID becomes system ``urn:oid:<id>``
    universal_entity_id_as_system: bool = True


class AccessionSection(Section):
    """Accession number systems, keyed by LocalNamespaceEntityID (0040,0031) or
    UniversalEntityID (0040,0032) of IssuerOfAccessionNumberSequence (0008,0051)."""

    default_system: Uri = "urn:imaging-bridge:accession"
    issuers: dict[str, Issuer] = Field(default_factory=dict)
    universal_entity_id_as_system: bool = True


class OrdersSection(Section):
    """Systems of the placer (0040,2016) and filler (0040,2017) order numbers."""

    placer_system: Uri = "urn:imaging-bridge:placer-order"
    filler_system: Uri = "urn:imaging-bridge:filler-order"


class StudyIdSection(Section):
    """StudyID (0020,0010) as a secondary identifier (it is unique only locally)."""

    emit: bool = True
    system: Uri | None = None


class ElementsSection(Section):
    """Optional FHIR elements to emit (all on by default)."""

    referrer: bool = True
    interpreter: bool = True
    procedure_code: bool = True
    reason_code: bool = True
    location: bool = True
    description: bool = True
    series_description: bool = True
    series_body_site: bool = True
    series_laterality: bool = True
    series_started: bool = True
    series_performer: bool = True
    instance_title: bool = True
    #: display names of codes taken from the standard tables (modality, SOP class, body site)
    displays: bool = True


class InstancesSection(Section):
    """Instance-level detail: ``full`` lists every instance, ``none`` only counts them."""

    detail: Literal["full", "none"] = "full"
    #: studies with more instances than this are mapped with detail ``none``
    max_instances_full: int = Field(default=5000, ge=0)


class EndpointSection(Section):
    """The archive's FHIR Endpoint (connectionType dicom-wado-rs)."""

    name: str | None = None
    payload_type: list[Coding] = Field(
        default_factory=lambda: [
            Coding(
                system="http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                code="any",
                display="Any",
            )
        ],
        min_length=1,
    )
    payload_mime_type: list[NonEmpty] = Field(default_factory=lambda: ["application/dicom"])
    #: Endpoint.identifier system; the value is the WADO-RS base URL (for conditional create)
    identifier_system: Uri = "urn:ietf:rfc:3986"


class Mapping(Section):
    """The whole mapping: mappings/default.yaml with site overrides merged on top."""

    version: Literal[1] = 1
    #: IANA zone applied when TimezoneOffsetFromUTC (0008,0201) is absent; None: date only
    timezone: str | None = None
    status: Literal["registered", "available", "cancelled", "entered-in-error", "unknown"] = (
        "available"
    )
    patient: PatientSection = Field(default_factory=PatientSection)
    accession: AccessionSection = Field(default_factory=AccessionSection)
    orders: OrdersSection = Field(default_factory=OrdersSection)
    study_id: StudyIdSection = Field(default_factory=StudyIdSection)
    #: extra Coding Scheme Designators (0008,0102) -> FHIR system, e.g. local 99XXX schemes
    coding_schemes: dict[str, Uri] = Field(default_factory=dict)
    #: procedure code maps: designator -> code value -> codings added (LOINC, RadLex Playbook)
    procedure_codes: dict[str, dict[str, list[Coding]]] = Field(default_factory=dict)
    #: local BodyPartExamined strings -> a Body Part Examined term of tables/body_parts.json
    body_parts: dict[str, NonEmpty] = Field(default_factory=dict)
    elements: ElementsSection = Field(default_factory=ElementsSection)
    instances: InstancesSection = Field(default_factory=InstancesSection)
    endpoint: EndpointSection = Field(default_factory=EndpointSection)

    _sources: tuple[str, ...] = PrivateAttr(default=())
    _tables_dir: str | None = PrivateAttr(default=None)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @property
    def sources(self) -> tuple[str, ...]:
        """The YAML files this mapping was loaded from, in merge order."""
        return self._sources

    @property
    def tables_dir(self) -> str | None:
        """The directory of the standard tables this mapping was validated against."""
        return self._tables_dir
