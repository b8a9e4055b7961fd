"""What a legacy source's C-FIND says about a study, series or instance, as frozen records.

Built from the C-FIND response identifiers of Study Root Query/Retrieve (PS3.4 C.6.2.1) by
:func:`study_record`, :func:`series_record` and :func:`instance_record`.  Only identifiers
and counts are kept: no patient names or birth dates (they are not needed to move a study,
and must not reach logs or reports).  A value the source left empty is ``None``; a response
without the level's unique key is a :class:`~bridge.errors.DicomDataError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydicom.dataset import Dataset

from bridge.errors import DicomDataError

__all__ = [
    "InstanceRecord",
    "SeriesRecord",
    "StudyRecord",
    "instance_record",
    "series_record",
    "study_record",
]


@dataclass(frozen=True, slots=True)
class StudyRecord:
    """One study as the source lists it (PS3.4 C.6.2.1.2, study level)."""

    study_uid: str
    patient_id: str | None
    #: IssuerOfPatientID (0010,0021): the assigning authority of ``patient_id``
    issuer_of_patient_id: str | None
    study_date: date | None
    accession_number: str | None
    #: ModalitiesInStudy (0008,0061), sorted; empty if the source does not return it
    modalities: tuple[str, ...]
    #: NumberOfStudyRelatedSeries / Instances (0020,1206 / 0020,1208), if returned
    series_count: int | None
    instance_count: int | None


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """One series of a study (series level)."""

    study_uid: str
    series_uid: str
    modality: str | None
    series_number: int | None
    #: NumberOfSeriesRelatedInstances (0020,1209), if returned
    instance_count: int | None


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One instance of a series (image/instance level)."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str | None
    instance_number: int | None


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    text = str(value).strip()
    return text or None


def _required(ds: Dataset, keyword: str, tag: str) -> str:
    value = _text(ds, keyword)
    if value is None:
        raise DicomDataError(f"a C-FIND response has no {keyword}", tag=f"{tag} {keyword}")
    return value


def _integer(ds: Dataset, keyword: str) -> int | None:
    text = _text(ds, keyword)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _date(ds: Dataset, keyword: str) -> date | None:
    # DA is YYYYMMDD (PS3.5 6.2); a source's malformed value is kept out, not guessed at
    text = _text(ds, keyword)
    if text is None or len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _multi(ds: Dataset, keyword: str) -> tuple[str, ...]:
    value = ds.get(keyword)
    if value is None or value == "":
        return ()
    # a multi-valued element reads as a MultiValue (a list), a single value as a str
    items = [value] if isinstance(value, str) else list(value)
    return tuple(sorted({str(v).strip() for v in items if str(v).strip()}))


def study_record(ds: Dataset) -> StudyRecord:
    """The study of a study-level C-FIND response identifier."""
    return StudyRecord(
        study_uid=_required(ds, "StudyInstanceUID", "(0020,000D)"),
        patient_id=_text(ds, "PatientID"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID"),
        study_date=_date(ds, "StudyDate"),
        accession_number=_text(ds, "AccessionNumber"),
        modalities=_multi(ds, "ModalitiesInStudy"),
        series_count=_integer(ds, "NumberOfStudyRelatedSeries"),
        instance_count=_integer(ds, "NumberOfStudyRelatedInstances"),
    )


def series_record(ds: Dataset) -> SeriesRecord:
    """The series of a series-level C-FIND response identifier."""
    return SeriesRecord(
        study_uid=_required(ds, "StudyInstanceUID", "(0020,000D)"),
        series_uid=_required(ds, "SeriesInstanceUID", "(0020,000E)"),
        modality=_text(ds, "Modality"),
        series_number=_integer(ds, "SeriesNumber"),
        instance_count=_integer(ds, "NumberOfSeriesRelatedInstances"),
    )


def instance_record(ds: Dataset) -> InstanceRecord:
    """The instance of an image-level C-FIND response identifier."""
    return InstanceRecord(
        study_uid=_required(ds, "StudyInstanceUID", "(0020,000D)"),
        series_uid=_required(ds, "SeriesInstanceUID", "(0020,000E)"),
        sop_instance_uid=_required(ds, "SOPInstanceUID", "(0008,0018)"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        instance_number=_integer(ds, "InstanceNumber"),
    )
