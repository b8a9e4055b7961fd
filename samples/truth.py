"""Ground truth of the generated studies: the records and the manifest file that holds them.

A :class:`StudyTruth` says what the archive holds for one study and what the EHR should get
from the bridge; tests and benchmarks compare the bridge's output with it.  The manifest
(``samples/README.md`` describes the format) stores the truth of a whole load as JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from samples.catalogue import (
    ACCESSION_SYSTEMS,
    DEFAULT_ACCESSION_SYSTEM,
    DEFAULT_PATIENT_SYSTEM,
    PATIENT_ID_SYSTEMS,
)

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "CodeTruth",
    "HasTruth",
    "SamplePatient",
    "SeriesTruth",
    "StudyTruth",
    "manifest_dict",
    "read_manifest",
    "write_manifest",
]

MANIFEST_FORMAT = "imaging-fhir-bridge/samples-manifest"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class SamplePatient:
    """One patient of the pool (what goes into the Patient module and the EHR Patient)."""

    patient_id: str
    issuer: str
    #: DICOM PN value, component groups separated by ``=`` (PS3.5 section 6.2.1)
    name: str
    #: SpecificCharacterSet needed for the name; ``None`` = default repertoire (ASCII)
    charset: str | None
    birth_date: str
    sex: str

    @property
    def identifier_system(self) -> str:
        """FHIR Identifier.system for this patient's issuer (shared conventions)."""
        return PATIENT_ID_SYSTEMS.get(self.issuer, DEFAULT_PATIENT_SYSTEM)


@dataclass(frozen=True)
class CodeTruth:
    """A coded entry as written in a DICOM code sequence item."""

    code: str
    scheme: str
    meaning: str


@dataclass(frozen=True)
class SeriesTruth:
    """Ground truth for one series."""

    series_uid: str
    series_number: int
    modality: str
    sop_class_uid: str
    description: str
    body_part: str | None
    laterality: str | None
    instance_count: int


@dataclass(frozen=True)
class StudyTruth:
    """Ground truth for one generated study: what the archive holds and the EHR should get."""

    index: int
    study_uid: str
    study_id: str
    patient_id: str
    patient_issuer: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    charset: str | None
    accession_number: str
    accession_issuer: str | None
    placer_order_number: str | None
    filler_order_number: str | None
    study_date: str
    study_time: str | None
    timezone_offset: str | None
    description: str
    procedure_codes: tuple[CodeTruth, ...]
    reason_codes: tuple[CodeTruth, ...]
    reason_text: str | None
    referring_physician: str
    institution: str
    department: str
    modalities: tuple[str, ...]
    series_count: int
    instance_count: int
    body_parts: tuple[str, ...]
    laterality: tuple[str, ...]
    series: tuple[SeriesTruth, ...]

    @property
    def patient_system(self) -> str:
        """FHIR Identifier.system of the patient identifier."""
        return PATIENT_ID_SYSTEMS.get(self.patient_issuer, DEFAULT_PATIENT_SYSTEM)

    @property
    def accession_system(self) -> str:
        """FHIR Identifier.system of the accession number."""
        if self.accession_issuer is None:
            return DEFAULT_ACCESSION_SYSTEM
        return ACCESSION_SYSTEMS.get(self.accession_issuer, DEFAULT_ACCESSION_SYSTEM)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists) plus the derived identifier systems."""
        data: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        data["patient_system"] = self.patient_system
        data["accession_system"] = self.accession_system
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyTruth:
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["procedure_codes"] = tuple(CodeTruth(**c) for c in data["procedure_codes"])
        values["reason_codes"] = tuple(CodeTruth(**c) for c in data["reason_codes"])
        values["series"] = tuple(SeriesTruth(**s) for s in data["series"])
        for key in ("modalities", "body_parts", "laterality"):
            values[key] = tuple(data[key])
        return cls(**values)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class HasTruth(Protocol):
    """A generated study (synthetic or real image) with its ground-truth record."""

    @property
    def truth(self) -> StudyTruth: ...


def manifest_dict(
    studies: Iterable[HasTruth | StudyTruth],
    *,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the ground-truth manifest (see ``samples/README.md`` for the format)."""
    truths = [s if isinstance(s, StudyTruth) else s.truth for s in studies]
    patients = {(t.patient_issuer, t.patient_id) for t in truths}
    return {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "parameters": dict(parameters or {}),
        "totals": {
            "studies": len(truths),
            "series": sum(t.series_count for t in truths),
            "instances": sum(t.instance_count for t in truths),
            "patients": len(patients),
        },
        "studies": [t.to_dict() for t in truths],
    }


def write_manifest(
    path: str | Path,
    studies: Iterable[HasTruth | StudyTruth],
    *,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the manifest as UTF-8 JSON to ``path`` and return it."""
    manifest = manifest_dict(studies, parameters=parameters)
    Path(path).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")
    return manifest


def read_manifest(path: str | Path) -> list[StudyTruth]:
    """Read a manifest written by :func:`write_manifest` back into truth records."""
    data = json.loads(Path(path).read_text("utf-8"))
    if data.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a samples manifest")
    return [StudyTruth.from_dict(s) for s in data["studies"]]
