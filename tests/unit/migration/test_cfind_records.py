"""C-FIND response identifiers become typed records; queries name the Study Root keys."""

from __future__ import annotations

from datetime import date

import pytest
from pydicom.dataset import Dataset

from bridge.errors import DicomDataError
from bridge.migration.queries import instance_query, series_query, study_query
from bridge.migration.records import instance_record, series_record, study_record


def identifier(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_study_record_keeps_identifiers_and_counts() -> None:
    record = study_record(identifier(
        StudyInstanceUID="1.2.3", PatientID="P1", IssuerOfPatientID="SITE-A",
        StudyDate="20240131", AccessionNumber="A9", ModalitiesInStudy=["MR", "CT", "MR"],
        NumberOfStudyRelatedSeries="2", NumberOfStudyRelatedInstances="7",
        PatientName="Doe^Jane"))
    assert (record.study_uid, record.patient_id, record.issuer_of_patient_id) == (
        "1.2.3", "P1", "SITE-A")
    assert (record.study_date, record.accession_number, record.modalities) == (
        date(2024, 1, 31), "A9", ("CT", "MR"))
    assert (record.series_count, record.instance_count) == (2, 7)
    assert "Doe" not in repr(record)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_empty_and_malformed_values_read_as_none() -> None:
    record = study_record(identifier(StudyInstanceUID="1.2.3", PatientID="", StudyDate="2024",
                                     ModalitiesInStudy="CT", NumberOfStudyRelatedInstances=""))
    assert (record.patient_id, record.study_date, record.modalities, record.instance_count) == (
        None, None, ("CT",), None)


def test_response_without_the_levels_unique_key_is_a_data_error() -> None:
    with pytest.raises(DicomDataError) as caught:
        series_record(identifier(StudyInstanceUID="1.2.3"))
    assert caught.value.tag == "(0020,000E) SeriesInstanceUID"


def test_series_and_instance_records() -> None:
    series = series_record(identifier(StudyInstanceUID="1", SeriesInstanceUID="1.1",
                                      Modality="CT", SeriesNumber="3",
                                      NumberOfSeriesRelatedInstances="4"))
    assert (series.modality, series.series_number, series.instance_count) == ("CT", 3, 4)
    instance = instance_record(identifier(StudyInstanceUID="1", SeriesInstanceUID="1.1",
                                          SOPInstanceUID="1.1.1", InstanceNumber="1",
                                          SOPClassUID="1.2.840.10008.5.1.4.1.1.2"))
    assert (instance.sop_instance_uid, instance.instance_number) == ("1.1.1", 1)


def test_queries_name_the_parent_unique_keys_and_a_date_range() -> None:
    study = study_query(start=date(2020, 1, 1), end=date(2020, 1, 31))
    assert (study.QueryRetrieveLevel, study.StudyDate) == ("STUDY", "20200101-20200131")
    assert "NumberOfStudyRelatedInstances" in study and "IssuerOfPatientID" in study
    assert series_query("1").StudyInstanceUID == "1"
    image = instance_query("1", "1.1")
    assert (image.QueryRetrieveLevel, image.SeriesInstanceUID) == ("IMAGE", "1.1")
