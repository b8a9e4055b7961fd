"""SQL-on-FHIR v2 ViewDefinitions (mappings/record/views) and the FHIRPath subset: the
shipped views give the rows the code gave before them, a view with a bad column is
refused naming the file and the column, forEach / where / nested select."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from record_golden_cases import PATIENT_REF, STUDY_REF

from bridge.errors import MappingConfigError
from bridge.record.fhirpath import FhirPathError, compile_path
from bridge.record.tables import report_row, series_rows
from bridge.record.views import load_view, load_views

DCM = "http://dicom.nema.org/resources/ontology/DCM"
STUDY: dict[str, Any] = {
    "resourceType": "ImagingStudy", "id": "s1", "subject": PATIENT_REF,
    "series": [{"uid": "1.1", "number": 1, "modality": {"system": DCM, "code": "CT"},
                "bodySite": {"code": "51185008"}, "numberOfInstances": 40,
                "started": "2024-03-01T10:00:00+01:00"},
               {"uid": "1.2", "number": 2, "modality": {"system": DCM, "code": "SR"}}]}
REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport", "id": "r1", "status": "final",
    "identifier": [{"system": "urn:other", "value": "x"},
                   {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}],
    "subject": PATIENT_REF, "imagingStudy": [STUDY_REF],
    "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4"}]},
    "effectiveDateTime": "2024-03-01T10:00:00+01:00", "issued": "2024-03-02T08:00:00Z",
    "conclusion": "No acute finding."}


def test_the_shipped_views_give_the_rows_of_the_code_they_replace() -> None:
    views = load_views()
    assert list(views["series"].rows(STUDY)) == series_rows(STUDY)
    expected = report_row(REPORT)
    assert expected is not None
    (row,) = views["reports"].rows(REPORT)
    assert row == {**expected, "code_text": None}
    # a report of no ImagingStudy is no imaging report (where)
    assert list(views["reports"].rows({**REPORT, "imagingStudy": []})) == []
    assert list(views["patients"].rows({"resourceType": "Patient", "id": "p",
                                        "gender": "female", "name": [{"family": "X"}]})) \
        == [{"id": "p", "gender": "female", "active": None}]
    assert list(views["patients"].rows(REPORT)) == []  # another resource type


@pytest.mark.parametrize(("text", "value", "expected"), [
    ("series.modality.code", STUDY, ["CT", "SR"]),
    ("series.where(modality.code = 'SR').uid", STUDY, ["1.2"]),
    ("series.where(bodySite).uid.first()", STUDY, ["1.1"]),
    ("series.uid.join('|')", STUDY, ["1.1|1.2"]),
    ("series.count()", STUDY, [2]),
    ("basedOn.exists()", STUDY, [False]),
    ("subject.getReferenceKey(Patient)", STUDY, [PATIENT_REF["reference"].split("/")[1]]),
    ("subject.getReferenceKey(Group)", STUDY, []),
])
def test_fhirpath_subset(text: str, value: Any, expected: list[Any]) -> None:
    assert compile_path(text).evaluate(value) == expected


@pytest.mark.parametrize("text", ["a.b(", "ofType(Quantity)", "a + b", "a.where(b = c)", ""])
def test_paths_outside_the_subset_are_refused(text: str) -> None:
    with pytest.raises(FhirPathError):
        compile_path(text)


def _write(tmp_path: Path, columns: list[dict[str, Any]], **extra: Any) -> Path:
    source = tmp_path / "broken.json"
    source.write_text(json.dumps({"resourceType": "ViewDefinition", "name": "broken",
                                  "resource": "Patient",
                                  "select": [{"column": columns}], **extra}))
    return source


@pytest.mark.parametrize(("columns", "message"), [
    ([{"name": "id", "path": "id"}, {"name": "gender", "path": "gender.ofType(code)"}],
     "broken.json: column 'gender': function ofType"),
    ([{"name": "id", "path": "id", "type": "Quantity"}], "broken.json: column 'id': type"),
    ([{"name": "id", "path": "id"}, {"name": "id", "path": "gender"}],
     "broken.json: column 'id': name used twice"),
    ([{"name": "bad name", "path": "id"}], "broken.json: column 'bad name': name"),
])
def test_a_bad_view_is_refused_naming_file_and_column(
        tmp_path: Path, columns: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(MappingConfigError, match=message):
        load_view(_write(tmp_path, columns))


def test_for_each_and_nested_select_cross_their_rows(tmp_path: Path) -> None:
    source = tmp_path / "v.json"
    source.write_text(json.dumps({
        "resourceType": "ViewDefinition", "name": "v", "resource": "ImagingStudy",
        "select": [{"column": [{"name": "sid", "path": "getResourceKey()"}]},
                   {"forEach": "series", "column": [{"name": "uid", "path": "uid"}],
                    "select": [{"forEach": "modality",
                                "column": [{"name": "m", "path": "code"}]}]}]}))
    assert list(load_view(source).rows(STUDY)) == [
        {"sid": "s1", "uid": "1.1", "m": "CT"}, {"sid": "s1", "uid": "1.2", "m": "SR"}]


def test_several_values_in_a_single_column_are_an_error(tmp_path: Path) -> None:
    view = load_view(_write(tmp_path, [{"name": "n", "path": "name.family"}]))
    with pytest.raises(MappingConfigError, match=r"column 'n'.*2 values"):
        list(view.rows({"resourceType": "Patient", "name": [{"family": "a"},
                                                            {"family": "b"}]}))


def test_the_export_command_refuses_a_bad_view_before_any_request(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bridge.cli import app
    from tests.support.settings import bridge_config, save_config, sqlite_url

    views = tmp_path / "views"
    views.mkdir()
    _write(views, [{"name": "gender", "path": "gender.ofType(code)"}])
    # an unreachable FHIR server: a request would fail differently
    config = save_config(tmp_path / "bridge.yaml", bridge_config(
        archives=[{"name": "pacs", "base_url": "http://archive.test/dw"}],
        fhir_url="http://127.0.0.1:9/fhir", state_url=sqlite_url(tmp_path)))
    result = CliRunner().invoke(app, ["export", "--out", str(tmp_path / "out"), "--views",
                                      str(views), "--config", str(config)])
    assert result.exit_code != 0
    assert "broken.json: column 'gender': function ofType" in result.output
    assert not (tmp_path / "out").exists()
