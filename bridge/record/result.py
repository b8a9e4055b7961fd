"""What a record mapping returns: FHIR resources plus typed warnings naming the content item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

#: the warning codes of the record mappings and what each means
WARNING_CODES: dict[str, str] = {
    "dose-value-missing": "a dose NUM item has no numeric value; left out",
    "dose-unit-missing": "a dose NUM item has no measurement units; left out",
    "dose-unit-unexpected": "a dose NUM item's units are not those the template allows; left out",
    "dose-value-out-of-range": "a dose value is outside its physical range; left out",
    "unknown-template": "the SR declares a template this mapping does not know; "
                        "text extracted generically",
    "no-template": "the SR declares no template (C.18.8); read as the expected template",
    "event-uid-missing": "an irradiation event has no Irradiation Event UID; no identifier",
    "issued-unknown": "no verification or content date-time with a zone; issued left out",
    "document-absent": "an encapsulated document's bytes are neither inline nor given; "
                       "no presentedForm",
    "report-text-empty": "the report holds no TEXT, CODE or NUM content items",
    "instance-unmappable": "an SR or document instance cannot be mapped (e.g. no SOP "
                           "Instance UID); nothing written for it",
    "not-written": "a resource without identifier cannot be written idempotently; left out",
    "duplicate-identifier": "a second resource with an identifier already mapped in the "
                            "study (an event in two dose SRs); left out",
    "report-in-ehr": "the EHR already holds a report for the study's order; the archive's "
                     "report is not written beside it",
    "document-unreadable": "an encapsulated document's BulkDataURI could not be read (or "
                           "points outside the archive); no presentedForm",
}


@dataclass(frozen=True, slots=True)
class RecordWarning:
    """A value left out or read with a guess: ``code`` from :data:`WARNING_CODES`, ``item``
    the content item (its containers and concept) or attribute concerned."""

    code: str
    item: str
    message: str

    def __post_init__(self) -> None:
        if self.code not in WARNING_CODES:
            raise ValueError(f"unknown record warning code {self.code!r}")

    def to_json(self) -> JSON:
        """JSON form for golden files and logs (no patient data: items are concept names)."""
        return {"code": self.code, "item": self.item, "message": self.message}


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The resources mapped from one SR instance, in a stable order, and the warnings."""

    resources: tuple[JSON, ...]
    warnings: tuple[RecordWarning, ...]

    def to_json(self) -> JSON:
        """``{"resources": [...], "warnings": [...]}``."""
        return {"resources": list(self.resources),
                "warnings": [w.to_json() for w in self.warnings]}
