"""The sharing policy: what mappings/sharing.yaml may say, as typed, validated data.

Sections (see mappings/sharing.yaml for the commented defaults):

* ``policy``: which studies are published as XDS-I.b manifests.  ``mode: all`` (default)
  shares every synced study, ``on-demand`` only studies someone asked to share; a study
  with a modality in ``exclude_modalities`` or a ConfidentialityCode (0040,1008) in
  ``exclude_confidentiality_codes`` is never shared.
* ``manifest``: the KOS manifest's own series (PS3.3 C.17.6.1) and equipment.
* ``document``: the XDS metadata codes of the DocumentReference (IHE ITI TF-3 4.2.3.2:
  typeCode, classCode, practiceSettingCode, healthcareFacilityTypeCode, confidentialityCode;
  in MHD: type, category, context.practiceSetting, context.facilityType, securityLabel),
  normally taken from the affinity domain's value sets.
* ``source``: the Imaging Document Source's identity: the SubmissionSet sourceId and the
  Retrieve Location UID (0040,E011) put in every manifest (IHE RAD TF-3 RAD-68).
* ``affinity_domain``: local patient ID issuer -> the affinity domain's identifier system.

Unknown keys are errors (``extra="forbid"``), like the main mapping (bridge.mapping.model).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator

from bridge.dicom_uid import is_valid_uid
from bridge.mapping.model import Coding, NonEmpty, Section, Uri

#: PS3.16 CID 29 "Acquisition Modality" defined terms are upper-case CS values (PS3.5 6.2)
_MODALITY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _check_uid(value: str) -> str:
    if not is_valid_uid(value):
        raise ValueError(f"{value!r} is not a DICOM UID (PS3.5 9.1: digits and dots, no "
                         "leading zero in a component, at most 64 characters)")
    return value


def _check_modality(value: str) -> str:
    if not value or len(value) > 16 or not set(value) <= _MODALITY_CHARS:
        raise ValueError(f"{value!r} is not a Modality (0008,0060) value: upper-case CS of "
                         "at most 16 characters, e.g. MG (PS3.3 C.7.3.1.1.1)")
    return value


Uid = Annotated[str, AfterValidator(_check_uid)]
Modality = Annotated[str, AfterValidator(_check_modality)]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


class PolicySection(Section):
    """Which studies are shared."""

    #: all: every synced study; on-demand: only studies whose sharing was requested
    mode: Literal["all", "on-demand"] = "all"
    #: a study with any instance of one of these modalities is not shared
    exclude_modalities: list[Modality] = Field(default_factory=list)
    #: a study whose ConfidentialityCode (0040,1008) is one of these is not shared
    exclude_confidentiality_codes: list[NonEmpty] = Field(default_factory=list)


class ManifestSection(Section):
    """The KOS manifest's series (Key Object Document Series Module, PS3.3 C.17.6.1)."""

    series_number: int = Field(default=9999, ge=1, le=2**31 - 1)  # IS, PS3.5 6.2
    series_description: str = "XDS-I.b imaging manifest"
    #: General Equipment Module (PS3.3 C.7.5.1) Manufacturer (0008,0070), Type 2
    manufacturer: str = "imaging-fhir-bridge"


class DocumentSection(Section):
    """XDS document metadata codes (IHE ITI TF-3 4.2.3.2; XDS-I.b RAD-68)."""

    #: typeCode -> DocumentReference.type; LOINC 18748-4 is the usual XDS-I.b value
    type: Coding = Coding(system=LOINC, code="18748-4", display="Diagnostic imaging study")
    #: classCode -> DocumentReference.category
    class_: Coding = Field(
        default=Coding(system=LOINC, code="18726-0", display="Radiology studies (set)"),
        alias="class",
    )
    #: practiceSettingCode -> DocumentReference.context.practiceSetting
    practice_setting: Coding = Coding(system=SNOMED, code="394914008", display="Radiology")
    #: healthcareFacilityTypeCode -> DocumentReference.context.facilityType
    facility_type: Coding = Coding(system=SNOMED, code="22232009", display="Hospital")
    #: confidentialityCode -> DocumentReference.securityLabel
    confidentiality: Coding = Coding(system=V3_CONFIDENTIALITY, code="N", display="normal")


class SourceSection(Section):
    """The Imaging Document Source's identity in the affinity domain."""

    #: SubmissionSet.sourceId (ITI TF-3 4.2.3.3): the source's OID, as urn:oid:...
    source_id: Uri
    #: Retrieve Location UID (0040,E011) of every series item: the repositoryUniqueId of the
    #: gateway the referenced instances are retrieved from (IHE RAD TF-3 RAD-68)
    retrieve_location_uid: Uid
    #: the site's name as partners see it: DocumentReference.author's display (MHD
    #: DocumentEntry.author, authorInstitution); None writes no author
    name: NonEmpty | None = None

    @field_validator("source_id")
    @classmethod
    def _oid_urn(cls, value: str) -> str:
        if not value.lower().startswith("urn:oid:"):
            raise ValueError("must be an OID as urn:oid:... (ITI TF-3 4.2.3.3 sourceId)")
        return value


class Issuer(Section):
    """The affinity domain's identifier system for one local issuer's patient IDs."""

    system: Uri


class AffinityDomainSection(Section):
    """Local PatientID issuer -> affinity-domain identifier system.

    Keyed like the main mapping's ``patient.issuers``: by IssuerOfPatientID (0010,0021) or
    the UniversalEntityID (0040,0032) of IssuerOfPatientIDQualifiersSequence (0010,0024).
    An issuer not listed is never guessed: the study is not published (IdentityUnmapped).
    """

    issuers: dict[str, Issuer] = Field(default_factory=dict)


class SharingPolicy(Section):
    """The whole of mappings/sharing.yaml."""

    version: Literal[1] = 1
    policy: PolicySection = Field(default_factory=PolicySection)
    manifest: ManifestSection = Field(default_factory=ManifestSection)
    document: DocumentSection = Field(default_factory=DocumentSection)
    source: SourceSection
    affinity_domain: AffinityDomainSection = Field(default_factory=AffinityDomainSection)
