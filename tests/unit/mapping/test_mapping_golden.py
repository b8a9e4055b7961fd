"""Golden tests: DICOM JSON in (golden/*.in.json), FHIR JSON out (golden/*.out.json).

Regenerate after an intended change with ``UPDATE_GOLDEN=1 pytest tests/unit/mapping`` and
review the diff of the golden files like any other change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from golden_cases import HANDMADE, Case
from mapping_helpers import ENDPOINT, GOLDEN, assert_valid, default_engine, site_engine
from pydicom.data import get_charset_files, get_testdata_file

from bridge.errors import DicomDataError
from bridge.mapping import MappingEngine, map_files

UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
ENGINES: dict[str, MappingEngine] = {}

PYDICOM_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "rtplan.dcm",
    "rtstruct.dcm",
    "rtdose.dcm",
    "reportsi.dcm",
    "liver_1frame.dcm",
)


def _engine(name: str) -> MappingEngine:
    if name not in ENGINES:
        ENGINES[name] = default_engine() if name == "default" else site_engine()
    return ENGINES[name]


def _dump(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def check_golden(name: str, inputs: dict[str, Any], mapping: str = "site") -> None:
    """Map ``inputs`` and compare input and output with the golden files."""
    in_path, out_path = GOLDEN / f"{name}.in.json", GOLDEN / f"{name}.out.json"
    try:
        result = _engine(mapping).map_study(
            inputs["instances"], endpoint=ENDPOINT, **inputs.get("options", {})
        )
    except DicomDataError as exc:
        output: dict[str, Any] = {
            "error": {"kind": exc.kind, "tag": exc.tag, "message": exc.message}
        }
    else:
        assert_valid(result)
        output = result.to_json()
    output["mapping"] = mapping
    if UPDATE:
        in_path.write_text(_dump(inputs), encoding="utf-8")
        out_path.write_text(_dump(output), encoding="utf-8")
        return
    assert in_path.exists(), f"no golden file for {name}: run with UPDATE_GOLDEN=1"
    assert json.loads(in_path.read_text(encoding="utf-8")) == json.loads(_dump(inputs))
    assert json.loads(_dump(output)) == json.loads(out_path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", HANDMADE, ids=lambda c: c.name)
def test_handmade_study_maps_to_its_golden_resources(case: Case) -> None:
    check_golden(case.name, {"instances": case.build(), "options": case.options}, case.mapping)


@pytest.mark.parametrize("filename", PYDICOM_FILES)
def test_pydicom_test_file_maps_to_its_golden_resources(filename: str) -> None:
    path = get_testdata_file(filename)
    assert path is not None
    check_golden(f"pydicom_{Path(filename).stem}", {"instances": map_files([path])})


@pytest.mark.parametrize(
    "path", sorted(p for p in get_charset_files() if p.endswith(".dcm")), ids=lambda p: Path(p).stem
)
def test_charset_file_maps_with_names_decoded(path: str) -> None:
    check_golden(f"charset_{Path(path).stem}", {"instances": map_files([path])})


def test_generated_samples_map_to_their_golden_resources() -> None:
    from samples import generator
    for index, sample in enumerate(generator.generate_studies(4, seed=11, profile="small")):
        check_golden(f"sample_{index}", {"instances": sample.to_dicom_json()})


def test_every_golden_file_has_a_case() -> None:
    names = {p.name.removesuffix(".in.json") for p in GOLDEN.glob("*.in.json")}
    outputs = {p.name.removesuffix(".out.json") for p in GOLDEN.glob("*.out.json")}
    assert names == outputs
    expected = {c.name for c in HANDMADE}
    expected |= {f"pydicom_{Path(f).stem}" for f in PYDICOM_FILES}
    expected |= {f"charset_{Path(p).stem}" for p in get_charset_files() if p.endswith(".dcm")}
    expected |= {f"sample_{i}" for i in range(4)}
    assert names == expected
