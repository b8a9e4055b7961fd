"""Why the mapping could not use a value: a stable code and a sentence.

Every warning of :class:`~bridge.mapping.result.MappingWarning` carries one of the codes
catalogued here.  The sentence says what is wrong and what the mapping did instead; the
code is what the sync records, what ``imaging-bridge warnings list --code`` filters on and
what the ``bridge_mapping_warnings_total`` metric is labelled with, so it never changes
with the wording.  The sentences are built from constants and VR names only, never from
the offending value (the value travels separately, in ``MappingWarning.value``).

``fix`` tells an interface team where the cure lies: ``mapping`` (an entry in
mappings/*.yaml would make the value usable) or ``source`` (the data sent by the modality or
the archive is wrong).  ``value_is_term`` marks codes whose offending value is a term of a
coded vocabulary the mapping looks up (a body part, modality, laterality, coding scheme
designator or character set), never a fact about the patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Fix = Literal["mapping", "source"]


@dataclass(frozen=True, slots=True)
class WarningCode:
    """One entry of the catalogue: what the code means and where it is fixed."""

    code: str
    meaning: str
    fix: Fix
    value_is_term: bool = False


def _catalogue(*codes: WarningCode) -> dict[str, WarningCode]:
    return {c.code: c for c in codes}


#: every warning code, in the order the mapping reference lists them
WARNING_CODES: dict[str, WarningCode] = _catalogue(
    # --- the mapping lacks an entry --------------------------------------------------
    WarningCode(
        "unknown-body-part",
        "BodyPartExamined is neither a PS3.16 Annex L term nor in `body_parts`",
        "mapping",
        value_is_term=True,
    ),
    WarningCode(
        "unknown-coding-scheme",
        "a CodingSchemeDesignator not in `coding_schemes`: the code is kept as text only",
        "mapping",
        value_is_term=True,
    ),
    WarningCode(
        "unknown-issuer",
        "an issuer of PatientID or AccessionNumber not in the mapping's `issuers`: the "
        "default identifier system is used",
        "mapping",
    ),
    WarningCode(
        "no-timezone",
        "no TimezoneOffsetFromUTC and no `timezone` in the mapping: `started` has date "
        "precision",
        "mapping",
    ),
    # --- the value is not a term of its vocabulary ------------------------------------
    WarningCode(
        "unknown-modality",
        "Modality is not a CID 33 defined term: series.modality is OT",
        "source",
        value_is_term=True,
    ),
    WarningCode(
        "unknown-laterality",
        "(Image)Laterality is not L, R, B or U: series.laterality left out",
        "source",
        value_is_term=True,
    ),
    WarningCode("unknown-sex", "PatientSex is not M, F or O: gender left out", "source"),
    WarningCode(
        "code-without-scheme",
        "a code item without CodingSchemeDesignator: kept as text only",
        "source",
    ),
    # --- required values missing ------------------------------------------------------
    WarningCode(
        "missing-modality", "Modality is absent (Type 1): series.modality is OT", "source"
    ),
    WarningCode(
        "missing-patient-id", "PatientID is absent or unusable: no subject identifier", "source"
    ),
    WarningCode(
        "missing-sop-instance-uid",
        "an instance without a usable SOPInstanceUID: counted, not listed",
        "source",
    ),
    WarningCode(
        "missing-sop-class-uid",
        "an instance without a usable SOPClassUID: counted, not listed",
        "source",
    ),
    WarningCode(
        "duplicate-instance", "the same SOPInstanceUID returned twice: listed once", "source"
    ),
    WarningCode(
        "missing-study-date", "StudyDate is absent or empty: `started` left out", "source"
    ),
    # --- values that break their VR (PS3.5 6.2) ---------------------------------------
    WarningCode("invalid-date", "not a valid DA: the element is left out", "source"),
    WarningCode(
        "implausible-date",
        "a StudyDate or SeriesDate before 1895, when X-rays were discovered: left out",
        "source",
    ),
    WarningCode(
        "future-date",
        "a StudyDate or SeriesDate after tomorrow (UTC): kept, the modality's clock is "
        "probably wrong",
        "source",
    ),
    WarningCode("partial-date", "a DA without month or day: reduced precision", "source"),
    WarningCode("invalid-time", "not a valid TM: date precision used", "source"),
    WarningCode("hour-only-time", "a TM with hours only: date precision used", "source"),
    WarningCode(
        "invalid-timezone-offset", "not a valid TimezoneOffsetFromUTC: ignored", "source"
    ),
    WarningCode(
        "invalid-integer",
        "not an IS integer in range, or dropped by the archive (an empty Value array): "
        "left out",
        "source",
    ),
    WarningCode(
        "multiple-values",
        "several values for a single-valued attribute (VM 1): the first is used",
        "source",
    ),
    WarningCode("negative-number", "negative, FHIR unsignedInt cannot hold it", "source"),
    WarningCode("invalid-uid", "not a valid UID (PS3.5 9.1): left out", "source"),
    WarningCode("invalid-code-string", "not a CS value (A-Z, 0-9, space, _)", "source"),
    WarningCode("too-long", "longer than its VR allows: left out", "source"),
    WarningCode(
        "undecodable-characters",
        "undecodable characters (wrong or missing SpecificCharacterSet): left out",
        "source",
    ),
    WarningCode(
        "unknown-character-set",
        "SpecificCharacterSet is not a PS3.3 C.12.1.1.2 defined term: text may have lost "
        "characters; PatientName is left out",
        "source",
        value_is_term=True,
    ),
    WarningCode("control-characters", "characters FHIR strings do not allow: left out", "source"),
    # --- DICOM JSON that does not follow PS3.18 F.2 -----------------------------------
    WarningCode("malformed-json", "an element, value or item that is not PS3.18 F.2 JSON",
                "source"),
)


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong with a value: a catalogued ``code`` and the ``text`` shown to people.

    ``text`` must not contain the value itself (it is persisted and logged).
    """

    code: str
    text: str

    def __post_init__(self) -> None:
        if self.code not in WARNING_CODES:
            raise ValueError(f"uncatalogued mapping warning code {self.code!r}")

    def __str__(self) -> str:
        return self.text
