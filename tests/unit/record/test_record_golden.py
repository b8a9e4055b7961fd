"""Golden tests of the record mappings: DICOM JSON in (golden/*.in.json), FHIR JSON out
(golden/*.out.json), every resource validated by two independent FHIR parsers.

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/record`` and
review the diff of the golden files like any other change.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from record_golden_cases import CASES, GOLDEN, PATIENT_REF, STUDY_REF, assert_valid

from bridge.record.dose import map_dose_sr
from bridge.record.pdf_report import map_pdf_report
from bridge.record.report import map_report_sr

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def _dump(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_record_golden(name: str) -> None:
    kind, build = CASES[name]
    inputs = build()
    mapper = {"dose": map_dose_sr, "report": map_report_sr, "pdf": map_pdf_report}[kind]
    result = mapper(inputs, imaging_study=STUDY_REF, patient=PATIENT_REF)
    assert_valid(list(result.resources))
    output = result.to_json()
    in_path, out_path = GOLDEN / f"{name}.in.json", GOLDEN / f"{name}.out.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        in_path.write_text(_dump(inputs), encoding="utf-8")
        out_path.write_text(_dump(output), encoding="utf-8")
    # the stored input is what the sample generator makes today, and maps to the stored output
    assert json.loads(in_path.read_text(encoding="utf-8")) == json.loads(_dump(inputs))
    assert json.loads(out_path.read_text(encoding="utf-8")) == json.loads(_dump(output))
