"""Building blocks of the generated Structured Reports: SR content items (PS3.3 C.17.3)
and the SR Document General module shared by the dose SRs and the text reports.

Used by :mod:`samples.rdsr` and :mod:`samples.report_sr`; the patient and study attributes
are copied from a generated study's ground truth (:class:`samples.truth.StudyTruth`) so the
SR lands in the very study the generator made.
"""

from __future__ import annotations

import copy

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from samples.part10 import IMPLEMENTATION_CLASS_UID, write_part10
from samples.truth import StudyTruth
from samples.uids import uid

__all__ = [
    "code",
    "code_item",
    "container",
    "datetime_item",
    "num_item",
    "part10",
    "sr_document",
    "study_instance",
    "text_item",
    "uid",
    "uidref_item",
]


def code(value: str, scheme: str, meaning: str) -> Dataset:
    """A Code Sequence item (PS3.3 8.8)."""
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _item(relationship: str | None, value_type: str, concept: Dataset) -> Dataset:
    item = Dataset()
    if relationship is not None:
        item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = Sequence([concept])
    return item


def container(
    relationship: str | None, concept: Dataset, children: list[Dataset]
) -> Dataset:
    """A CONTAINER content item, SEPARATE continuity (PS3.3 C.17.3.2.1)."""
    item = _item(relationship, "CONTAINER", concept)
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = Sequence(children)
    return item


def num_item(
    relationship: str, concept: Dataset, value: float | None, unit: Dataset | None
) -> Dataset:
    """A NUM content item with its Measured Value Sequence (PS3.3 C.18.1); ``value=None``
    writes an empty Measured Value Sequence, ``unit=None`` no units (both are bad input)."""
    item = _item(relationship, "NUM", concept)
    measured: list[Dataset] = []
    if value is not None:
        mv = Dataset()
        mv.NumericValue = f"{value:.6g}"
        if unit is not None:
            mv.MeasurementUnitsCodeSequence = Sequence([unit])
        measured.append(mv)
    item.MeasuredValueSequence = Sequence(measured)
    return item


def code_item(relationship: str, concept: Dataset, value: Dataset) -> Dataset:
    """A CODE content item."""
    item = _item(relationship, "CODE", concept)
    item.ConceptCodeSequence = Sequence([value])
    return item


def text_item(relationship: str, concept: Dataset, value: str) -> Dataset:
    """A TEXT content item."""
    item = _item(relationship, "TEXT", concept)
    item.TextValue = value
    return item


def uidref_item(relationship: str, concept: Dataset, value: str) -> Dataset:
    """A UIDREF content item."""
    item = _item(relationship, "UIDREF", concept)
    item.UID = value
    return item


def datetime_item(relationship: str, concept: Dataset, value: str) -> Dataset:
    """A DATETIME content item."""
    item = _item(relationship, "DATETIME", concept)
    item.DateTime = value
    return item


def study_instance(
    truth: StudyTruth,
    *,
    sop_class_uid: str,
    sop_uid: str,
    series_uid: str,
    modality: str,
    series_number: int,
    content_date: str,
    content_time: str,
) -> Dataset:
    """A single-instance series of ``truth``'s study (an SR or an Encapsulated PDF): SOP
    Common (C.12.1), Patient (C.7.1.1) and General Study (C.7.2.1) attributes copied from the
    ground truth, the series' identifiers and the content date and time."""
    ds = Dataset()
    if truth.charset:
        ds.SpecificCharacterSet = truth.charset
    ds.SOPClassUID = sop_class_uid
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = truth.study_date
    if truth.study_time is not None:
        ds.StudyTime = truth.study_time
    ds.ContentDate = content_date
    ds.ContentTime = content_time
    ds.AccessionNumber = truth.accession_number
    ds.Modality = modality
    ds.PatientName = truth.patient_name
    ds.PatientID = truth.patient_id
    ds.IssuerOfPatientID = truth.patient_issuer
    ds.PatientBirthDate = truth.patient_birth_date
    ds.PatientSex = truth.patient_sex
    ds.StudyInstanceUID = truth.study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = truth.study_id
    ds.SeriesNumber = series_number
    ds.InstanceNumber = 1
    if truth.timezone_offset is not None:
        ds.TimezoneOffsetFromUTC = truth.timezone_offset
    return ds


def sr_document(
    truth: StudyTruth,
    *,
    sop_class_uid: str,
    sop_uid: str,
    series_uid: str,
    template: str,
    title: Dataset,
    content: list[Dataset],
    content_date: str,
    content_time: str,
) -> Dataset:
    """An SR instance of ``truth``'s study: Patient and General Study modules copied from the
    ground truth, SR Document Series (C.17.1), SR Document General (C.17.2) and the root
    CONTAINER with its template identifier (C.18.8, ``DCMR``)."""
    ds = study_instance(
        truth, sop_class_uid=sop_class_uid, sop_uid=sop_uid, series_uid=series_uid,
        modality="SR", series_number=900, content_date=content_date, content_time=content_time,
    )
    ds.Manufacturer = "Synthetic Imaging Co."
    ds.ReferringPhysicianName = truth.referring_physician
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([title])
    ds.ContinuityOfContent = "SEPARATE"
    tid = Dataset()
    tid.MappingResource = "DCMR"
    tid.TemplateIdentifier = template
    ds.ContentTemplateSequence = Sequence([tid])
    ds.ContentSequence = Sequence(content)
    return ds


def part10(ds: Dataset) -> bytes:
    """A generated SR or encapsulated document as a Part 10 file (PS3.10 7.1 file meta,
    explicit VR little endian), e.g. for STOW-RS; ``ds`` is left unchanged."""
    out = copy.copy(ds)
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    out.file_meta = meta
    return write_part10(out)
