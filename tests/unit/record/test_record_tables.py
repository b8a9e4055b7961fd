"""The analytics tables: the study-level body site rule, dose values in canonical units,
imaging reports only, and tables written whole (temporary file renamed into place)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from record_golden_cases import PATIENT_REF, STUDY_REF, _study

from bridge.record.dose import map_dose_sr
from bridge.record.export import write_table
from bridge.record.rules import load_dose_rules
from bridge.record.tables import TABLES, dose_row, report_row, study_row
from samples.rdsr import projection_dose_sr

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"


def _series(number: int, modality: str, site: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"uid": f"1.{number}", "number": number,
                           "modality": {"system": DCM, "code": modality}}
    if site:
        out["bodySite"] = {"system": SCT, "code": site, "display": f"site {site}"}
    return out


def _imaging_study(*series: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "ImagingStudy", "id": "s1", "subject": PATIENT_REF,
            "started": "2024-03-01T10:00:00+01:00",
            "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
            "modality": [{"system": DCM, "code": "SR"}, {"system": DCM, "code": "CT"}],
            "series": list(series)}


def test_the_study_body_site_is_the_one_most_image_series_carry() -> None:
    row = study_row(_imaging_study(_series(1, "CT", "A"), _series(2, "CT", "B"),
                                   _series(3, "CT", "B"), _series(4, "SR", "A"),
                                   _series(5, "SR", "A")))
    assert (row["body_site"], row["body_site_display"]) == ("B", "site B")
    assert (row["modality"], row["modalities"], row["year"]) == ("CT", "SR,CT", 2024)
    assert row["study_uid"] == "1.2.3" and row["patient"] == PATIENT_REF["reference"]
    tie = study_row(_imaging_study(_series(2, "CT", "B"), _series(1, "CT", "A")))
    assert tie["body_site"] == "A"  # the first series by number
    assert study_row(_imaging_study(_series(1, "CT", None)))["body_site"] is None


def test_dose_values_are_in_the_canonical_unit() -> None:
    rules = load_dose_rules()
    ds, truth = projection_dose_sr(_study("CR").truth, seed=1)
    summary, *events = map_dose_sr(ds.to_json_dict(), imaging_study=STUDY_REF,
                                   patient=PATIENT_REF).resources
    total = next(c for c in summary["component"]
                 if c["code"]["coding"][0]["code"] == "113722")
    total["valueQuantity"].update(value=total["valueQuantity"]["value"] * 1e6,
                                  unit="cGy.cm2", code="cGy.cm2")
    row = dose_row(summary, rules)
    assert row is not None
    assert (row["kind"], row["study_id"]) == ("summary", "example-study")
    assert row["dap_total_gy_m2"] == pytest.approx(truth.dap_total_gy_m2)
    event = dose_row(events[0], rules)
    assert event is not None and event["kind"] == "event"
    assert event["dap_gy_m2"] == pytest.approx(truth.events[0].dap_gy_m2)
    total["valueQuantity"].update(unit="R", code="R")  # no factor known: left empty
    unknown = dose_row(summary, rules)
    assert unknown is not None and unknown["dap_total_gy_m2"] is None
    assert dose_row({"resourceType": "Observation", "code": {"text": "BP"}}, rules) is None


def test_only_reports_of_an_imaging_study_are_rows() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final",
              "subject": PATIENT_REF, "code": {"coding": [{"code": "18748-4"}]}}
    assert report_row(report) is None
    row = report_row({**report, "imagingStudy": [STUDY_REF]})
    assert row is not None and (row["study_id"], row["code"]) == ("example-study", "18748-4")


@pytest.mark.parametrize("parquet", [False, True])
def test_a_table_is_written_whole_and_replaces_the_last(tmp_path: Path, parquet: bool) -> None:
    rows = [{"id": "1", "kind": "summary", "dlp_total_mgy_cm": 12.5, "year": 2024}]
    path = write_table(tmp_path, "dose", [], parquet=parquet)
    assert write_table(tmp_path, "dose", rows, parquet=parquet) == path
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    columns = [c for c, _ in TABLES["dose"]]
    if parquet:
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        assert table.column_names == columns
        assert table.to_pylist()[0]["dlp_total_mgy_cm"] == 12.5
        assert str(table.schema.field("year").type) == "int64"
    else:
        with path.open(encoding="utf-8") as handle:
            [read] = list(csv.DictReader(handle))
        assert list(read) == columns and read["dlp_total_mgy_cm"] == "12.5"
