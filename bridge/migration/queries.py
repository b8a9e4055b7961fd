"""C-FIND request identifiers of Study Root Query/Retrieve (PS3.4 C.6.2.1).

Each level's identifier asks for the unique keys of the levels above and of its own
(PS3.4 C.4.1.2.1: a hierarchical query names the unique keys of every higher level), plus
the return keys our records hold, with universal matching (an empty value).  Matching keys
are StudyDate ranges (PS3.4 C.2.2.2.5) and the parents' UIDs (single value matching).
"""

from __future__ import annotations

from datetime import date

from pydicom.dataset import Dataset

__all__ = ["date_range", "instance_query", "series_query", "study_query"]


def date_range(start: date, end: date) -> str:
    """Range matching value ``YYYYMMDD-YYYYMMDD`` of a DA key (PS3.4 C.2.2.2.5)."""
    return f"{start:%Y%m%d}-{end:%Y%m%d}"


def study_query(*, start: date | None = None, end: date | None = None,
                study_uid: str | None = None) -> Dataset:
    """Studies dated in [start, end] (both or neither), or the one study ``study_uid``."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid or ""
    ds.StudyDate = date_range(start, end) if start and end else ""
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.PatientID = ""
    ds.IssuerOfPatientID = ""
    ds.ModalitiesInStudy = ""
    ds.NumberOfStudyRelatedSeries = ""
    ds.NumberOfStudyRelatedInstances = ""
    return ds


def series_query(study_uid: str) -> Dataset:
    """The series of one study."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = ""
    ds.SeriesNumber = ""
    ds.NumberOfSeriesRelatedInstances = ""
    return ds


def instance_query(study_uid: str, series_uid: str) -> Dataset:
    """The instances of one series (Study Root needs the series' UID at image level)."""
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.SOPInstanceUID = ""
    ds.SOPClassUID = ""
    ds.InstanceNumber = ""
    return ds
