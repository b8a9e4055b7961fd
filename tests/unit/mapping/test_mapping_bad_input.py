"""Bad input: typed data errors for missing UIDs, warnings (and a valid resource) otherwise."""

from __future__ import annotations

import pytest
from mapping_helpers import (
    ENDPOINT,
    assert_valid,
    code,
    default_engine,
    ds,
    site_engine,
    study,
    warning_problems,
)

from bridge.errors import DicomDataError
from bridge.mapping import MappingResult

ENGINE = site_engine()


def mapped(**kwargs: object) -> MappingResult:
    result = ENGINE.map_study(study(**kwargs), endpoint=ENDPOINT)  # type: ignore[arg-type]
    assert_valid(result)
    return result


def test_missing_study_instance_uid_is_a_data_error_naming_the_tag() -> None:
    instances = study()
    for instance in instances:
        del instance["0020000D"]
    with pytest.raises(DicomDataError) as caught:
        ENGINE.map_study(instances, endpoint=ENDPOINT)
    assert caught.value.tag == "(0020,000D) StudyInstanceUID"


def test_missing_series_instance_uid_is_a_data_error_naming_the_tag() -> None:
    instances = study(per_series=3)
    del instances[1]["0020000E"]
    with pytest.raises(DicomDataError) as caught:
        ENGINE.map_study(instances, endpoint=ENDPOINT)
    assert caught.value.tag == "(0020,000E) SeriesInstanceUID"


def test_invalid_series_uid_is_a_data_error() -> None:
    with pytest.raises(DicomDataError, match="SeriesInstanceUID"):
        ENGINE.map_study(study(series_attrs={1: {"SeriesInstanceUID": "1.2.x"}}), endpoint=ENDPOINT)


def test_instances_of_two_studies_are_a_data_error() -> None:
    instances = study() + study(study_uid="1.2.3.4")
    with pytest.raises(DicomDataError, match="more than one study"):
        ENGINE.map_study(instances, endpoint=ENDPOINT)


def test_no_input_at_all_is_a_data_error() -> None:
    with pytest.raises(DicomDataError):
        ENGINE.map_study([], endpoint=ENDPOINT)


@pytest.mark.parametrize(
    ("keyword", "value", "problem"),
    [
        ("StudyDate", "20241345", "not a valid date"),
        ("StudyDate", "2024-01-15", "not a valid date"),
        ("StudyTime", "256100", "not a valid time"),
        ("TimezoneOffsetFromUTC", "+1500", "not a valid offset"),
        ("StudyDescription", "y" * 65, "longer than 64 characters"),
        ("StudyDescription", "bad \ufffd byte", "undecodable characters"),
        ("StudyDescription", "bell\x07", "control characters"),
        ("StudyDescription", "lone \ud800 surrogate", "control characters"),
        ("IssuerOfPatientID", "NOWHERE", "unknown issuer"),
        ("PatientSex", "Z", "not M, F or O"),
    ],
)
def test_bad_study_value_is_left_out_with_a_warning(keyword: str, value: str, problem: str) -> None:
    result = mapped(study_attrs={keyword: value})
    problems = [w for w in result.warnings if w.tag.endswith(keyword)]
    assert problems, result.warnings
    assert problem in problems[0].problem


def test_bad_date_leaves_started_out() -> None:
    assert "started" not in mapped(study_attrs={"StudyDate": "2024"[:3]}).imaging_study


def test_non_numeric_is_values_are_left_out() -> None:
    result = mapped(
        series_attrs={1: {"SeriesNumber": "x1"}}, instance_attrs={(1, 1): {"InstanceNumber": "?"}}
    )
    series = result.imaging_study["series"][0]
    assert "number" not in series
    assert "number" not in series["instance"][-1]
    tags = warning_problems(result)
    assert "(0020,0011) SeriesNumber" in tags and "(0020,0013) InstanceNumber" in tags


def test_is_values_as_numeric_strings_are_read() -> None:
    result = mapped(series_attrs={1: {"SeriesNumber": " 7 "}})
    assert result.imaging_study["series"][0]["number"] == 7
    assert result.warnings == []


def test_unknown_body_part_gives_no_body_site_and_a_warning() -> None:
    result = mapped(series_attrs={1: {"BodyPartExamined": "ELBOWISH"}})
    assert "bodySite" not in result.imaging_study["series"][0]
    assert "unknown body part" in warning_problems(result)["(0018,0015) BodyPartExamined"][0]


def test_site_body_part_strings_map_to_cid_4031_terms() -> None:
    result = mapped(series_attrs={1: {"BodyPartExamined": "Thorax"}})
    assert result.imaging_study["series"][0]["bodySite"] == {
        "system": "http://snomed.info/sct",
        "code": "816094009",
        "display": "Chest",
    }


def test_unknown_or_missing_modality_falls_back_to_ot_with_a_warning() -> None:
    for value in ("XYZ", None):
        result = mapped(series_attrs={1: {"Modality": value}})
        assert result.imaging_study["series"][0]["modality"]["code"] == "OT"
        assert "(0008,0060) Modality" in warning_problems(result)
        assert "modality" not in result.imaging_study  # OT is not an acquisition modality


def test_unknown_coding_scheme_keeps_text_only() -> None:
    result = mapped(study_attrs={"ProcedureCodeSequence": [code("X1", "99NOPE", "Local thing")]})
    assert result.imaging_study["procedureCode"] == [{"text": "Local thing"}]
    assert "(0008,0102) CodingSchemeDesignator" in warning_problems(result)


def test_missing_sop_class_keeps_the_instance_counted_but_not_listed() -> None:
    result = mapped(per_series=3, instance_attrs={(1, 2): {"SOPClassUID": None}})
    series = result.imaging_study["series"][0]
    assert series["numberOfInstances"] == 3
    assert [i["number"] for i in series["instance"]] == [1, 3]


def test_duplicate_instances_are_listed_once() -> None:
    instances = study(per_series=2)
    result = ENGINE.map_study([*instances, instances[0]], endpoint=ENDPOINT)
    assert result.imaging_study["numberOfInstances"] == 2
    assert "listed once" in warning_problems(result)["(0008,0018) SOPInstanceUID"][0]


def test_malformed_elements_are_reported_not_raised() -> None:
    instances = study()
    for instance in instances:
        instance["00081030"] = "not an element"
        instance["00080090"] = {"vr": "PN", "Value": "not a list"}
        instance["00081032"] = {"vr": "SQ", "Value": [42, None]}
    result = ENGINE.map_study(instances, endpoint=ENDPOINT)
    assert_valid(result)
    problems = warning_problems(result)
    assert {"(0008,1030) StudyDescription", "(0008,0090) ReferringPhysicianName"} <= set(problems)
    assert "sequence item is not a dataset" in problems["(0008,1032) ProcedureCodeSequence"][0]


def test_missing_patient_id_gives_an_unidentified_subject() -> None:
    result = mapped(study_attrs={"PatientID": None})
    assert result.patient.value is None
    assert result.imaging_study["subject"] == {"type": "Patient", "display": "unidentified patient"}
    assert "(0010,0020) PatientID" in warning_problems(result)


def test_patient_warnings_are_marked_sensitive() -> None:
    result = mapped(study_attrs={"PatientSex": "Q", "StudyDescription": "z" * 80})
    by_tag = {w.tag: w for w in result.warnings}
    assert by_tag["(0010,0040) PatientSex"].sensitive
    assert "<redacted>" in str(by_tag["(0010,0040) PatientSex"])
    assert not by_tag["(0008,1030) StudyDescription"].sensitive


def test_default_mapping_without_timezone_keeps_date_only() -> None:
    result = default_engine().map_study(
        study(study_attrs={"TimezoneOffsetFromUTC": None}), endpoint=ENDPOINT
    )
    assert result.imaging_study["started"] == "2024-01-15"
    assert "(0008,0201) TimezoneOffsetFromUTC" in warning_problems(result)


def test_hour_only_time_gives_date_precision_with_a_warning() -> None:
    result = mapped(study_attrs={"StudyTime": "10"})
    assert result.imaging_study["started"] == "2024-01-15"
    assert "hours only" in warning_problems(result)["(0008,0030) StudyTime"][0]


def test_series_records_without_uid_are_a_data_error() -> None:
    with pytest.raises(DicomDataError, match="SeriesInstanceUID"):
        ENGINE.map_study(study(), series=[ds(Modality="CT")], endpoint=ENDPOINT)


def test_endpoint_must_be_a_base_url() -> None:
    from bridge.mapping import EndpointSpec

    with pytest.raises(ValueError, match="base URL"):
        ENGINE.map_study(
            study(), endpoint=EndpointSpec(address="http://pacs/dicom-web/studies/1.2.3")
        )
