"""The coercion rules of a migration: what ``mappings/migration.yaml`` may say, and its loader.

Per legacy source (by its ``migration.sources[].name``): the Issuer of Patient ID to
supply or replace (with its qualifiers), a prefix for accession numbers, institution names
to correct, and a patient-ID cross-reference table (IHE MIMA-style: the legacy site's ID
-> the enterprise's).  Values are checked against their value representations (PS3.5 6.2)
here, so a rule cannot write an invalid element at run time.  Every problem of a file is
reported at once as ``file:line dotted.key: message`` (:mod:`bridge.mapping.loader`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from bridge.errors import MappingConfigError
from bridge.mapping.loader import Origins, read_yaml, validation_problems

__all__ = ["DEFAULT_MIGRATION_MAPPING", "IssuerRule", "MigrationMapping", "SourceRules",
           "load_migration_mapping"]

#: the repository's example coercion file
DEFAULT_MIGRATION_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "migration.yaml"

#: PS3.5 Table 6.2-1 maximum lengths
LO_MAX = 64
SH_MAX = 16
UT_UID_MAX = 64


def _text(limit: int, vr: str) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"longer than {limit} characters (VR {vr}, PS3.5 6.2)")
        if "\\" in value or any(ord(c) < 0x20 for c in value):
            raise ValueError(f"no backslash or control characters in VR {vr} (PS3.5 6.2)")
        return value
    return AfterValidator(check)


LO = Annotated[str, _text(LO_MAX, "LO")]
SH = Annotated[str, _text(SH_MAX, "SH")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IssuerQualifiers(_Strict):
    """One item of Issuer of Patient ID Qualifiers Sequence (0010,0024), PS3.3 C.7.1.1."""

    #: Universal Entity ID (0040,0032), UT: the issuer's globally unique identifier
    universal_entity_id: Annotated[str, _text(UT_UID_MAX, "UT")] | None = None
    #: Universal Entity ID Type (0040,0033), CS: ISO (an OID), DNS, UUID, URI...
    universal_entity_id_type: Literal["DNS", "EUI64", "ISO", "URI", "UUID", "X400",
                                      "X500"] | None = None
    #: Identifier Type Code (0040,0035), CS: HL7 Table 0203 (MR medical record number)
    identifier_type_code: Annotated[str, Field(pattern=r"^[A-Z0-9 _]{1,16}$")] | None = None


class IssuerRule(_Strict):
    """The assigning authority of the source's Patient IDs."""

    #: Issuer of Patient ID (0010,0021), LO
    value: LO = Field(min_length=1)
    #: replace a value the source sent (false: only supply it where there is none)
    replace: bool = True
    #: Issuer of Patient ID Qualifiers Sequence (0010,0024); None: left as it is
    qualifiers: IssuerQualifiers | None = None


class SourceRules(_Strict):
    """What is coerced in one source's instances; nothing given: nothing changes."""

    issuer_of_patient_id: IssuerRule | None = None
    #: put in front of every Accession Number (0008,0050) that does not start with it
    #: already (the result must still fit VR SH: 16 characters)
    accession_prefix: SH | None = None
    #: Institution Name (0008,0080) as the source wrote it -> as it should read
    institution_names: dict[LO, LO] = Field(default_factory=dict)
    #: Patient ID (0010,0020) at the source -> the enterprise's Patient ID (IHE MIMA-style
    #: cross-reference)
    patient_ids: dict[LO, LO] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return (self.issuer_of_patient_id is None and self.accession_prefix is None
                and not self.institution_names and not self.patient_ids)


class MigrationMapping(_Strict):
    """The whole of a migration coercion file."""

    version: Literal[1] = 1
    #: Modifying System (0400,0563) of each Original Attributes Sequence item written
    modifying_system: LO = "imaging-fhir-bridge"
    #: rules per legacy source name
    sources: dict[str, SourceRules] = Field(default_factory=dict)

    def rules_for(self, source: str) -> SourceRules | None:
        """``source``'s rules, None when it has none (or they change nothing)."""
        rules = self.sources.get(source)
        return None if rules is None or rules.empty else rules


def load_migration_mapping(path: str | Path = DEFAULT_MIGRATION_MAPPING) -> MigrationMapping:
    """Read and validate one coercion file; :class:`~bridge.errors.MappingConfigError`
    naming file, line and key of every problem."""
    file = Path(path)
    origins: Origins = {}
    data = read_yaml(file, origins)
    try:
        return MigrationMapping.model_validate(data)
    except ValidationError as exc:
        problems = [line for _, line in validation_problems(exc, origins, str(file))]
        raise MappingConfigError("\n".join(problems)) from exc
