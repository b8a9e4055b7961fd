"""What a manifest needs to know about a study, read once from its DICOM JSON metadata.

Input: the study's instances as WADO-RS metadata returns them (PS3.18 10.4.1.1.2, DICOM
JSON model PS3.18 F.2), every instance carrying its study and series attributes.  Only
UIDs, the patient's ID and issuer, and a few codes are read here; the patient and study
modules are copied into the manifest verbatim by :mod:`bridge.sharing.kos`.

A UID that is missing or malformed is a :class:`~bridge.sharing.errors.ManifestDataError`
naming the attribute: a manifest must reference exactly what the archive holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bridge.dicom_uid import is_valid_uid
from bridge.mapping.peek import values
from bridge.mapping.tags import (
    ACCESSION_NUMBER,
    ISSUER_OF_PATIENT_ID,
    ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE,
    MODALITY,
    PATIENT_ID,
    SERIES_INSTANCE_UID,
    SOP_CLASS_UID,
    SOP_INSTANCE_UID,
    STUDY_DATE,
    STUDY_DESCRIPTION,
    STUDY_INSTANCE_UID,
    UNIVERSAL_ENTITY_ID,
)
from bridge.sharing.errors import ManifestDataError

DicomJson = dict[str, Any]

ROWS = "00280010"  # Rows: an instance with pixels is an IMAGE reference (TID 2010)
CONFIDENTIALITY_CODE = "00401008"
STUDY_UID = STUDY_INSTANCE_UID
SERIES_UID = SERIES_INSTANCE_UID
ISSUER_QUALIFIERS = ISSUER_OF_PATIENT_ID_QUALIFIERS_SEQUENCE

_LABELS = {
    STUDY_UID: "(0020,000D) StudyInstanceUID",
    SERIES_UID: "(0020,000E) SeriesInstanceUID",
    SOP_CLASS_UID: "(0008,0016) SOPClassUID",
    SOP_INSTANCE_UID: "(0008,0018) SOPInstanceUID",
}


def first_text(ds: DicomJson, tag: str) -> str | None:
    """The first value of a text element, stripped; ``None`` when absent or blank."""
    found = values(ds, tag)
    if not found or not isinstance(found[0], str) or not found[0].strip():
        return None
    return found[0].strip()


def _uid(ds: DicomJson, tag: str, where: str) -> str:
    found = values(ds, tag)
    value = found[0] if found else None
    if not is_valid_uid(value):
        shown = "absent" if value is None else f"{str(value)[:70]!r} is not a valid UID"
        raise ManifestDataError(
            f"{_LABELS[tag]} {shown} in {where}: the manifest cannot reference it "
            "(PS3.5 9.1)", tag=_LABELS[tag],
        )
    assert isinstance(value, str)
    return value


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """One instance the manifest references (Hierarchical SOP Instance Reference Macro)."""

    series_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    modality: str | None
    #: an image (Image Pixel Module present, Rows (0028,0010)): referenced by an IMAGE
    #: content item, anything else by a COMPOSITE one (PS3.3 C.17.3.2.4, TID 2010)
    is_image: bool


@dataclass(frozen=True, slots=True)
class StudyFacts:
    """The study as the sharing room sees it; instances sorted by series then SOP UID."""

    study_uid: str
    patient_id: str | None
    #: IssuerOfPatientID (0010,0021) and the qualifiers' UniversalEntityID (0040,0032)
    issuer: str | None
    universal_entity_id: str | None
    accession_number: str | None
    study_date: str | None
    study_description: str | None
    confidentiality_codes: tuple[str, ...]
    instances: tuple[InstanceRef, ...]

    @property
    def modalities(self) -> tuple[str, ...]:
        """Distinct Modality (0008,0060) values of the referenced instances, sorted."""
        return tuple(sorted({i.modality for i in self.instances if i.modality}))


def read_study(
    instances: Sequence[DicomJson], *, skip_series: frozenset[str] = frozenset()
) -> StudyFacts:
    """Read the facts of one study from its instances' DICOM JSON.

    ``skip_series`` names series left out of the references: the manifest's own series,
    once the manifest itself is stored in the archive (a manifest never references itself
    or an earlier manifest of the study).  Raises ManifestDataError naming the attribute
    when a UID is missing or malformed, when the instances belong to several studies, or
    when no instance is left to reference.
    """
    if not instances:
        raise ManifestDataError(f"{_LABELS[SOP_INSTANCE_UID]} absent: the study has no "
                                "instances to reference", tag=_LABELS[SOP_INSTANCE_UID])
    study_uid = _uid(instances[0], STUDY_UID, "the first instance")
    refs: dict[str, InstanceRef] = {}
    codes: set[str] = set()
    for index, ds in enumerate(instances):
        where = f"instance {index}"
        if _uid(ds, STUDY_UID, where) != study_uid:
            raise ManifestDataError(
                f"{_LABELS[STUDY_UID]} differs between instances: a manifest describes one "
                "study", tag=_LABELS[STUDY_UID])
        series_uid = _uid(ds, SERIES_UID, where)
        if series_uid in skip_series:
            continue
        sop_uid = _uid(ds, SOP_INSTANCE_UID, where)
        refs[sop_uid] = InstanceRef(
            series_uid=series_uid,
            sop_class_uid=_uid(ds, SOP_CLASS_UID, where),
            sop_instance_uid=sop_uid,
            modality=first_text(ds, MODALITY),
            is_image=bool(values(ds, ROWS)),
        )
        codes.update(str(c).strip() for c in values(ds, CONFIDENTIALITY_CODE) if str(c).strip())
    if not refs:
        raise ManifestDataError(f"{_LABELS[SOP_INSTANCE_UID]} absent: every instance of the "
                                "study is a manifest", tag=_LABELS[SOP_INSTANCE_UID])
    first = instances[0]
    qualifiers = values(first, ISSUER_QUALIFIERS)
    universal = (first_text(qualifiers[0], UNIVERSAL_ENTITY_ID)
                 if qualifiers and isinstance(qualifiers[0], dict) else None)
    return StudyFacts(
        study_uid=study_uid,
        patient_id=first_text(first, PATIENT_ID),
        issuer=first_text(first, ISSUER_OF_PATIENT_ID),
        universal_entity_id=universal,
        accession_number=first_text(first, ACCESSION_NUMBER),
        study_date=first_text(first, STUDY_DATE),
        study_description=first_text(first, STUDY_DESCRIPTION),
        confidentiality_codes=tuple(sorted(codes)),
        instances=tuple(sorted(refs.values(),
                               key=lambda r: (r.series_uid, r.sop_instance_uid))),
    )
