"""One study's record: instances picked by SOP Class, every resource written idempotently (a
conditional update on its identifier), those that cannot be left out with a warning."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import unquote

import pytest
from record_golden_cases import (
    CONTENT_SEQUENCE,
    PATIENT_REF,
    STUDY_REF,
    _study,
    find_item,
)

from bridge.record.study import (
    ENCAPSULATED_PDF,
    RecordKind,
    document_uri,
    identifier_query,
    map_study_record,
    record_instances,
    transaction,
)
from samples.rdsr import ct_dose_sr
from samples.report_pdf import pdf_report
from samples.report_sr import text_report_sr

JSON = dict[str, Any]
TAG = {"system": "urn:imaging-bridge", "code": "managed"}


def _ct_record() -> tuple[list[JSON], JSON, JSON, JSON]:
    study = _study("CT")
    dose = ct_dose_sr(study.truth, seed=1)[0].to_json_dict()
    report = text_report_sr(study.truth, seed=1, verified=True)[0].to_json_dict()
    pdf = pdf_report(study.truth, seed=1)[0].to_json_dict()
    return study.to_dicom_json(), dose, report, pdf


def _uid(instance: JSON) -> str:
    return str(instance["00080018"]["Value"][0])


def test_report_dose_and_pdf_instances_are_picked_by_sop_class() -> None:
    images, dose, report, pdf = _ct_record()
    picked = record_instances([*images, pdf, report, dose])
    assert {(i.kind, i.sop_uid) for i in picked} == {
        (RecordKind.DOSE, _uid(dose)), (RecordKind.REPORT, _uid(report)),
        (RecordKind.PDF, _uid(pdf))}
    assert [i.sop_uid for i in picked] == sorted(i.sop_uid for i in picked)
    assert record_instances(images) == []


def test_a_study_record_maps_to_resources_each_with_an_identifier() -> None:
    _, dose, report, pdf = _ct_record()
    result = map_study_record(record_instances([dose, report, pdf]), imaging_study=STUDY_REF,
                              patient=PATIENT_REF)
    assert result.warnings == ()
    types = [r["resourceType"] for r in result.resources]
    events = sum(1 for item in dose[CONTENT_SEQUENCE]["Value"]
                 if item["0040A043"]["Value"][0]["00080100"]["Value"][0] == "113819")
    assert events >= 1
    assert (types.count("DiagnosticReport"), types.count("Observation")) == (2, 1 + events)
    keys = [(r["resourceType"], r["identifier"][0]["value"]) for r in result.resources]
    assert len(set(keys)) == len(keys)
    assert all(r["identifier"][0]["system"] == "urn:dicom:uid" for r in result.resources)


def test_an_event_without_uid_is_not_written_and_says_so() -> None:
    _, dose, _, _ = _ct_record()
    broken = copy.deepcopy(dose)
    event_uid = find_item(broken, "113769")
    event_uid.pop("0040A124")  # the UIDREF value
    result = map_study_record(record_instances([broken]), imaging_study=STUDY_REF,
                              patient=PATIENT_REF)
    codes = [w.code for w in result.warnings]
    assert codes == ["event-uid-missing", "not-written"]
    assert all(r.get("identifier") for r in result.resources)
    whole = map_study_record(record_instances([dose]), imaging_study=STUDY_REF,
                             patient=PATIENT_REF)
    assert len(result.resources) == len(whole.resources) - 1


def test_an_event_in_two_dose_srs_is_written_once() -> None:
    _, dose, _, _ = _ct_record()
    again = copy.deepcopy(dose)
    again["00080018"]["Value"] = ["2.25.16"]  # another SR of the same irradiation events
    result = map_study_record(record_instances([dose, again]), imaging_study=STUDY_REF,
                              patient=PATIENT_REF)
    single = map_study_record(record_instances([dose]), imaging_study=STUDY_REF,
                              patient=PATIENT_REF)
    events = len(single.resources) - 1
    assert len(result.resources) == len(single.resources) + 1  # the second summary only
    assert [w.code for w in result.warnings] == ["duplicate-identifier"] * events


def test_an_instance_the_mapping_refuses_is_left_out_with_a_warning() -> None:
    _, dose, report, _ = _ct_record()
    anonymous = copy.deepcopy(report)
    del anonymous["00080018"]
    result = map_study_record(record_instances([dose, anonymous]), imaging_study=STUDY_REF,
                              patient=PATIENT_REF)
    [warning] = result.warnings
    assert (warning.code, warning.item) == ("instance-unmappable", "report ?")
    assert all(r["resourceType"] == "Observation" for r in result.resources)


def test_the_transaction_is_conditional_updates_on_the_identifier() -> None:
    resources: list[JSON] = [{"resourceType": "Observation", "meta": {"tag": [TAG]},
                  "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}]},
                 {"resourceType": "DiagnosticReport",
                  "identifier": [{"system": "urn:x", "value": "a|b,c"}]}]
    bundle = transaction(resources, tag=TAG)
    assert bundle["type"] == "transaction"
    requests = [e["request"] for e in bundle["entry"]]
    assert [r["method"] for r in requests] == ["PUT", "PUT"]
    assert unquote(requests[0]["url"]) == "Observation?identifier=urn:dicom:uid|urn:oid:1.2.3"
    assert unquote(requests[1]["url"]) == r"DiagnosticReport?identifier=urn:x|a\|b\,c"
    assert [e["resource"]["meta"]["tag"] for e in bundle["entry"]] == [[TAG], [TAG]]
    assert "meta" not in resources[1]  # the caller's resources are not changed
    assert identifier_query("s", "v") == "s%7Cv"
    with pytest.raises(ValueError, match="without identifier"):
        transaction([{"resourceType": "Observation"}])


def test_a_pdf_bulk_data_uri_is_found() -> None:
    _, _, _, pdf = _ct_record()
    [inline] = record_instances([pdf])
    assert document_uri(inline) is None
    pdf["00420011"] = {"vr": "OB", "BulkDataURI": "http://archive/bulk/1"}
    [by_uri] = record_instances([pdf])
    assert by_uri.kind is RecordKind.PDF and pdf["00080016"]["Value"] == [ENCAPSULATED_PDF]
    assert document_uri(by_uri) == "http://archive/bulk/1"
