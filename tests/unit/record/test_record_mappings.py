"""Behaviour of the record mappings beyond the golden files: values match the generated
ground truth, defects are left out with a warning naming the item, status rules, purity."""

from __future__ import annotations

import ast
import base64
import copy
from pathlib import Path

import pytest
from record_golden_cases import (
    CASES,
    PATIENT_REF,
    STUDY_REF,
    TEMPLATE_ID,
    TEMPLATE_SEQUENCE,
    _study,
    assert_valid,
)

from bridge.errors import DicomDataError
from bridge.record.dose import map_dose_sr
from bridge.record.report import map_report_sr, report_status
from samples.rdsr import ct_dose_sr, projection_dose_sr
from samples.report_sr import text_report_sr

DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _components(resource: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["code"]["coding"][0]["code"]: c for c in resource.get("component", [])}


def test_ct_observations_carry_the_generated_ctdivol_dlp_and_event_uids() -> None:
    ds, truth = ct_dose_sr(_study("CT").truth, seed=5)
    result = map_dose_sr(ds.to_json_dict(), imaging_study=STUDY_REF, patient=PATIENT_REF)
    summary, *events = result.resources
    assert result.warnings == ()
    assert summary["identifier"][0]["value"] == f"urn:oid:{truth.sop_uid}"
    assert summary["partOf"] == [STUDY_REF] and summary["subject"] == PATIENT_REF
    start = next(i.DateTime for i in ds.ContentSequence
                 if i.ConceptNameCodeSequence[0].CodeValue == "113809")
    assert summary["effectiveDateTime"].startswith(
        f"{start[:4]}-{start[4:6]}-{start[6:8]}T{start[8:10]}:{start[10:12]}:")
    total = _components(summary)["113813"]["valueQuantity"]
    assert (total["value"], total["code"]) == (truth.dlp_total_mgy_cm, "mGy.cm")
    assert [e["identifier"][0]["value"] for e in events] == [
        f"urn:oid:{t.event_uid}" for t in truth.events]
    for observation, event in zip(events, truth.events, strict=True):
        assert observation["code"]["coding"][0] == {
            "system": DCM, "code": "113852", "display": "Irradiation Event"}
        parts = _components(observation)
        assert parts["113830"]["valueQuantity"]["value"] == event.ctdivol_mgy
        assert parts["113830"]["valueQuantity"]["code"] == "mGy"
        assert parts["113838"]["valueQuantity"]["value"] == event.dlp_mgy_cm
        assert observation["bodySite"]["text"] == event.target_region
    assert_valid(list(result.resources))


def test_projection_observations_carry_the_generated_dap() -> None:
    ds, truth = projection_dose_sr(_study("CR").truth, seed=5)
    result = map_dose_sr(ds.to_json_dict(), imaging_study=STUDY_REF, patient=PATIENT_REF)
    summary, *events = result.resources
    assert _components(summary)["113722"]["valueQuantity"]["value"] == truth.dap_total_gy_m2
    assert [_components(e)["122130"]["valueQuantity"]["value"] for e in events] == [
        t.dap_gy_m2 for t in truth.events]


def test_defective_dose_values_are_left_out_with_a_warning_naming_the_item() -> None:
    result = map_dose_sr(CASES["dose_ct_defects"][1](), imaging_study=STUDY_REF,
                         patient=PATIENT_REF)
    summary, first, second = result.resources
    assert "113813" not in _components(summary)
    assert "113830" not in _components(first) and "113838" not in _components(first)
    assert "113830" not in _components(second) and "113838" in _components(second)
    assert {(w.code, w.item) for w in result.warnings} == {
        ("dose-value-out-of-range",
         "CT Accumulated Dose Data > (DCM,113813) CT Dose Length Product Total"),
        ("dose-unit-missing", "CT Acquisition #1 > CT Dose > (DCM,113830) Mean CTDIvol"),
        ("dose-value-out-of-range", "CT Acquisition #1 > CT Dose > (DCM,113838) DLP"),
        ("dose-value-missing", "CT Acquisition #2 > CT Dose > (DCM,113830) Mean CTDIvol"),
    }


def test_dap_keeps_the_units_the_sr_states_and_range_checks_them_converted() -> None:
    result = map_dose_sr(CASES["dose_projection_cgy_cm2"][1](), imaging_study=STUDY_REF,
                         patient=PATIENT_REF)
    total = _components(result.resources[0])["113722"]["valueQuantity"]
    assert (total["value"], total["unit"], total["code"]) == (12.4, "cGy.cm2", "cGy.cm2")
    assert [w.code for w in result.warnings] == ["dose-unit-unexpected"]


@pytest.mark.parametrize(("completion", "verification", "status"), [
    ("COMPLETE", "VERIFIED", "final"),
    ("COMPLETE", "UNVERIFIED", "preliminary"),
    ("PARTIAL", "UNVERIFIED", "partial"),
    ("PARTIAL", "VERIFIED", "partial"),
    (None, None, "preliminary"),
])
def test_report_status_follows_completion_and_verification_flags(
    completion: str | None, verification: str | None, status: str
) -> None:
    assert report_status(completion, verification) == status


def test_verified_report_names_the_verifier_and_issues_at_verification() -> None:
    ds, truth = text_report_sr(_study("CT").truth, seed=4, verified=True)
    observer = ds.VerifyingObserverSequence[0]
    report = map_report_sr(ds.to_json_dict(), imaging_study=STUDY_REF,
                           patient=PATIENT_REF).resources[0]
    assert report["status"] == "final"
    family, given = truth.verifier.split("^")[:2]  # type: ignore[union-attr]
    assert report["resultsInterpreter"] == [{"display": f"Dr {given} {family}"}]
    when = observer.VerificationDateTime
    assert report["issued"].startswith(f"{when[:4]}-{when[4:6]}-{when[6:8]}T{when[8:10]}:")
    assert report["conclusion"] == truth.impression
    text = base64.b64decode(report["presentedForm"][0]["data"]).decode("utf-8")
    assert all(finding in text for finding in truth.findings)
    assert report["identifier"] == [{"system": "urn:dicom:uid",
                                     "value": f"urn:oid:{truth.sop_uid}"}]
    assert report["imagingStudy"] == [STUDY_REF]


def test_unknown_template_still_gives_the_text_and_a_warning_naming_it() -> None:
    ds, truth = text_report_sr(_study("MR").truth, seed=2, verified=False)
    data = ds.to_json_dict()
    data[TEMPLATE_SEQUENCE]["Value"][0][TEMPLATE_ID]["Value"] = ["1500"]
    result = map_report_sr(data, imaging_study=STUDY_REF, patient=PATIENT_REF)
    assert [(w.code, w.item) for w in result.warnings] == [("unknown-template", "TID 1500")]
    text = base64.b64decode(result.resources[0]["presentedForm"][0]["data"]).decode()
    assert truth.impression in text
    assert_valid(list(result.resources))


def test_sr_without_sop_instance_uid_is_a_dicom_data_error() -> None:
    data = copy.deepcopy(CASES["report_final"][1]())
    del data["00080018"]
    with pytest.raises(DicomDataError, match=r"^the report SR has no SOP Instance UID"):
        map_report_sr(data, imaging_study=STUDY_REF, patient=PATIENT_REF)
    dose = CASES["dose_ct"][1]()
    del dose["00080018"]
    with pytest.raises(DicomDataError, match=r"^the dose SR has no SOP Instance UID"):
        map_dose_sr(dose, imaging_study=STUDY_REF, patient=PATIENT_REF)


def test_sr_declaring_no_template_is_read_as_the_expected_one_with_a_warning() -> None:
    report = copy.deepcopy(CASES["report_final"][1]())
    del report[TEMPLATE_SEQUENCE]
    dose = copy.deepcopy(CASES["dose_ct"][1]())
    del dose[TEMPLATE_SEQUENCE]
    results = [map_report_sr(report, imaging_study=STUDY_REF, patient=PATIENT_REF),
               map_dose_sr(dose, imaging_study=STUDY_REF, patient=PATIENT_REF)]
    assert [[w.to_json() for w in r.warnings] for r in results] == [
        [{"code": "no-template", "item": "(0040,A504) ContentTemplateSequence",
          "message": "read as TID 2000"}],
        [{"code": "no-template", "item": "(0040,A504) ContentTemplateSequence",
          "message": "read as TID 10001/10011"}],
    ]


#: the room's modules that do I/O (the archive, the FHIR server, the task queue) around the
#: pure mappings; every other module of bridge/record is pure
RECORD_WIRING = frozenset({"bulk.py", "bulkdata.py", "export.py", "handler.py", "service.py"})


def test_record_mappings_import_nothing_of_ours_but_errors_and_mapping() -> None:
    room = Path(__file__).resolve().parents[3] / "bridge" / "record"
    bad: list[tuple[str, str]] = []
    pure = [path for path in room.glob("*.py") if path.name not in RECORD_WIRING]
    assert len(pure) >= 10
    for path in pure:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith("bridge") and not (
                    name == "bridge.errors" or name.startswith(("bridge.mapping",
                                                                 "bridge.record"))):
                    bad.append((path.name, name))
                if name.startswith("bridge.record.") and f"{name.rsplit('.', 1)[1]}.py" \
                        in RECORD_WIRING:
                    bad.append((path.name, name))
    assert bad == []


def test_report_is_based_on_the_orders_the_caller_resolved() -> None:
    data = CASES["report_final"][1]()
    order = {"reference": "ServiceRequest/example-order"}
    with_order = map_report_sr(data, imaging_study=STUDY_REF, patient=PATIENT_REF,
                               based_on=[order]).resources[0]
    assert with_order["basedOn"] == [order]
    assert_valid([with_order])
    without = map_report_sr(data, imaging_study=STUDY_REF, patient=PATIENT_REF).resources[0]
    assert "basedOn" not in without


def test_comprehensive_sr_findings_are_rendered_and_context_left_out() -> None:
    report = map_report_sr(CASES["report_comprehensive"][1](), imaging_study=STUDY_REF,
                           patient=PATIENT_REF).resources[0]
    text = base64.b64decode(report["presentedForm"][0]["data"]).decode("utf-8")
    assert "Finding: Nodule\nDiameter: 8 mm\n" in text
    assert "English" not in text
