"""The typed worklist mapping: what mappings/worklist.yaml may say.

One pydantic model per section; unknown keys are errors (``extra="forbid"``), so a typo in
a site file is caught at start-up.  :mod:`bridge.worklist.loader` turns validation errors
into ``file:line key: message``.
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

#: AE title: 1-16 characters of the default repertoire, no backslash or control
#: characters, not all spaces (PS3.5 6.2, VR AE)
_AE = re.compile(r"[ -\[\]-~]{1,16}")
#: Code String: upper-case letters, digits, space, underscore, at most 16 (PS3.5 6.2, VR CS)
_CS = re.compile(r"[A-Z0-9 _]{1,16}")

IdentifierRole = Literal["accession", "placer", "filler"]
IdSource = Literal["accession", "placer", "filler", "id"]
StationField = Literal["performerType", "locationCode"]
Priority = Literal["STAT", "HIGH", "ROUTINE", "MEDIUM", "LOW"]


def _ae(value: str) -> str:
    if not _AE.fullmatch(value) or not value.strip():
        raise ValueError(f"not an AE title: {value!r} (1-16 characters, no backslash)")
    return value


def _cs(value: str) -> str:
    if not _CS.fullmatch(value):
        raise ValueError(f"not a Code String: {value!r} (A-Z, 0-9, space, _; <= 16)")
    return value


def _nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


AeTitle = Annotated[str, AfterValidator(_ae)]
CodeString = Annotated[str, AfterValidator(_cs)]
NonEmpty = Annotated[str, AfterValidator(_nonempty)]


class Section(BaseModel):
    """Base of every section: immutable, unknown keys rejected, numbers read as text."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class IdentifierRule(Section):
    """How one order identifier is recognised: by Identifier.type code (v2-0203) or system."""

    type_code: NonEmpty
    systems: tuple[NonEmpty, ...] = ()


class Identifiers(Section):
    accession: IdentifierRule = IdentifierRule(type_code="ACSN")
    placer: IdentifierRule = IdentifierRule(type_code="PLAC")
    filler: IdentifierRule = IdentifierRule(type_code="FILL")


class PatientSection(Section):
    identifier_types: tuple[NonEmpty, ...] = ("MR",)
    issuers: dict[str, NonEmpty] = Field(default_factory=dict)


class StudyUid(Section):
    namespace: uuid.UUID
    identity_from: tuple[IdSource, ...] = ("placer", "accession", "id")
    #: an order identifier of this system holds a Study Instance UID to keep ("": none)
    existing_uid_system: str = ""

    @field_validator("identity_from")
    @classmethod
    def _some(cls, value: tuple[IdSource, ...]) -> tuple[IdSource, ...]:
        if not value:
            raise ValueError("name at least one of placer, accession, filler, id")
        return value


class StationRule(Section):
    """A row of the station table: a coding of ``field`` -> modality and station."""

    field: StationField
    system: NonEmpty
    code: NonEmpty
    modality: CodeString
    station_ae: AeTitle
    station_name: str = ""


class WorklistMapping(Section):
    """The whole of mappings/worklist.yaml."""

    identifiers: Identifiers = Identifiers()
    accession_issuer: str = ""
    patient: PatientSection = PatientSection()
    coding_schemes: dict[str, NonEmpty] = Field(default_factory=dict)
    study_uid: StudyUid
    requested_procedure_id_from: IdSource = "accession"
    scheduled_step_id_from: IdSource = "accession"
    timezone: str = "UTC"
    #: ServiceRequest.priority -> RequestedProcedurePriority (0040,1003, SH): STAT, HIGH,
    #: ROUTINE, MEDIUM, LOW (PS3.3 C.4.11)
    priorities: dict[Literal["routine", "urgent", "asap", "stat"], Priority] = Field(
        default_factory=dict)
    station_fields: tuple[StationField, ...] = ("performerType", "locationCode")
    stations: tuple[StationRule, ...]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name, e.g. "
                             "Europe/Berlin)") from exc
        return value

    @field_validator("stations")
    @classmethod
    def _unique(cls, value: tuple[StationRule, ...]) -> tuple[StationRule, ...]:
        seen: set[tuple[str, str, str]] = set()
        for rule in value:
            key = (rule.field, rule.system, rule.code)
            if key in seen:
                raise ValueError(f"two rows for {rule.field} {rule.system}|{rule.code}")
            seen.add(key)
        return value
