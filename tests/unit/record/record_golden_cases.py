"""The golden cases of the record mappings: DICOM JSON inputs built from the sample generator
(samples/rdsr.py, samples/report_sr.py), some with deliberate defects, and the helpers that
validate the FHIR output with two independent parsers."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from fhirclient.models.diagnosticreport import DiagnosticReport as FcDiagnosticReport
from fhirclient.models.observation import Observation as FcObservation

from samples.generator import GeneratedStudy, generate_studies
from samples.rdsr import ct_dose_sr, projection_dose_sr
from samples.report_pdf import pdf_report
from samples.report_sr import text_report_sr

JSON = dict[str, Any]
GOLDEN = Path(__file__).parent / "golden"
STUDY_REF: JSON = {"reference": "ImagingStudy/example-study"}
PATIENT_REF: JSON = {"reference": "Patient/example-patient"}

# DICOM JSON keys used to plant defects
CONTENT_SEQUENCE = "0040A730"
CONCEPT_NAME = "0040A043"
MEASURED_VALUE = "0040A300"
NUMERIC_VALUE = "0040A30A"
UNITS = "004008EA"
CODE_VALUE = "00080100"
TEMPLATE_SEQUENCE = "0040A504"
TEMPLATE_ID = "0040DB00"


def _study(modality: str) -> GeneratedStudy:
    return next(s for s in generate_studies(24, seed=16) if modality in s.truth.modalities)


def find_item(node: JSON, code: str, nth: int = 0) -> JSON:
    """The ``nth`` content item (depth first) whose concept name code is ``code``."""
    found: list[JSON] = []

    def walk(item: JSON) -> None:
        for child in item.get(CONTENT_SEQUENCE, {}).get("Value", []):
            if child[CONCEPT_NAME]["Value"][0][CODE_VALUE]["Value"][0] == code:
                found.append(child)
            walk(child)

    walk(node)
    return found[nth]


def _ct() -> JSON:
    return ct_dose_sr(_study("CT").truth, seed=1)[0].to_json_dict()


def _projection() -> JSON:
    return projection_dose_sr(_study("CR").truth, seed=1)[0].to_json_dict()


def _ct_defects() -> JSON:
    """CTDIvol without units, a negative DLP, DLP total of 10^9 mGy.cm, a missing value."""
    ds = copy.deepcopy(ct_dose_sr(_study("CT").truth, seed=3)[0].to_json_dict())
    del find_item(ds, "113830")[MEASURED_VALUE]["Value"][0][UNITS]
    find_item(ds, "113838")[MEASURED_VALUE]["Value"][0][NUMERIC_VALUE]["Value"] = [-12.5]
    find_item(ds, "113813")[MEASURED_VALUE]["Value"][0][NUMERIC_VALUE]["Value"] = [1e9]
    find_item(ds, "113830", 1)[MEASURED_VALUE]["Value"] = []
    return ds


def _projection_cgy_cm2() -> JSON:
    """DAP total stated in cGy.cm2 (a unit TID 10002 allows), DAP of the event in mGy."""
    ds = copy.deepcopy(_projection())
    total = find_item(ds, "113722")[MEASURED_VALUE]["Value"][0]
    total[NUMERIC_VALUE]["Value"] = [12.4]
    total[UNITS]["Value"][0][CODE_VALUE]["Value"] = ["cGy.cm2"]
    event = find_item(ds, "122130")[MEASURED_VALUE]["Value"][0]
    event[UNITS]["Value"][0][CODE_VALUE]["Value"] = ["mGy"]
    return ds


def _report(verified: bool) -> Callable[[], JSON]:
    return lambda: text_report_sr(_study("CT").truth, seed=1, verified=verified)[0].to_json_dict()


def _report_unknown_template() -> JSON:
    ds = copy.deepcopy(text_report_sr(_study("MR").truth, seed=2, verified=True)[0]
                       .to_json_dict())
    ds[TEMPLATE_SEQUENCE]["Value"][0][TEMPLATE_ID]["Value"] = ["1500"]
    return ds


def _report_comprehensive() -> JSON:
    """A Comprehensive SR (TID 2000) whose findings are a CODE and a NUM item, plus a
    language context item that is not report text."""
    ds = copy.deepcopy(text_report_sr(_study("CT").truth, seed=3, verified=True)[0]
                       .to_json_dict())
    ds["00080016"]["Value"] = ["1.2.840.10008.5.1.4.1.1.88.33"]
    findings = find_item(ds, "121070")[CONTENT_SEQUENCE]["Value"]
    findings.append(_concept_item("CODE", "121071", "Finding", {
        "0040A168": {"vr": "SQ", "Value": [_code("27925004", "SCT", "Nodule")]}}))
    findings.append(_concept_item("NUM", "81827009", "Diameter", {
        MEASURED_VALUE: {"vr": "SQ", "Value": [{
            NUMERIC_VALUE: {"vr": "DS", "Value": [8]},
            UNITS: {"vr": "SQ", "Value": [_code("mm", "UCUM", "millimeter")]}}]}},
        scheme="SCT"))
    ds[CONTENT_SEQUENCE]["Value"].insert(0, _concept_item(
        "CODE", "121049", "Language of Content Item and Descendants", {
            "0040A168": {"vr": "SQ", "Value": [_code("en", "RFC5646", "English")]}},
        relationship="HAS CONCEPT MOD"))
    return ds


def _code(value: str, scheme: str, meaning: str) -> JSON:
    return {CODE_VALUE: {"vr": "SH", "Value": [value]},
            "00080102": {"vr": "SH", "Value": [scheme]},
            "00080104": {"vr": "LO", "Value": [meaning]}}


def _concept_item(value_type: str, code: str, meaning: str, value: JSON, *,
                  scheme: str = "DCM", relationship: str = "CONTAINS") -> JSON:
    return {"0040A010": {"vr": "CS", "Value": [relationship]},
            "0040A040": {"vr": "CS", "Value": [value_type]},
            CONCEPT_NAME: {"vr": "SQ", "Value": [_code(code, scheme, meaning)]}, **value}


def _report_pdf() -> JSON:
    return pdf_report(_study("CR").truth, seed=1)[0].to_json_dict()


#: case name -> (kind, input builder)
CASES: dict[str, tuple[str, Callable[[], JSON]]] = {
    "dose_ct": ("dose", _ct),
    "dose_projection": ("dose", _projection),
    "dose_ct_defects": ("dose", _ct_defects),
    "dose_projection_cgy_cm2": ("dose", _projection_cgy_cm2),
    "report_final": ("report", _report(True)),
    "report_preliminary": ("report", _report(False)),
    "report_unknown_template": ("report", _report_unknown_template),
    "report_comprehensive": ("report", _report_comprehensive),
    "report_pdf": ("pdf", _report_pdf),
}


def assert_valid(resources: list[JSON]) -> None:
    """Each resource validates with fhir.resources (R4B) and parses with fhirclient (R4)."""
    for resource in resources:
        if resource["resourceType"] == "Observation":
            Observation.model_validate(resource)
            FcObservation(resource, strict=True)
        else:
            DiagnosticReport.model_validate(resource)
            FcDiagnosticReport(resource, strict=True)
