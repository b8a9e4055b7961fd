"""Every mapping warning carries a catalogued code, and its sentence never carries the value:
the code is what the sync records and counts, the sentence is persisted and logged."""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest
from mapping_helpers import ENDPOINT, GOLDEN, default_engine, study

import bridge.mapping
from bridge.mapping import WARNING_CODES, Problem


def _module_problems() -> list[Problem]:
    found: list[Problem] = []
    for info in pkgutil.iter_modules(bridge.mapping.__path__, "bridge.mapping."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, Problem):
                found.append(value)
            elif isinstance(value, dict):
                found.extend(v for v in value.values() if isinstance(v, Problem))
    return found


def test_every_catalogued_code_is_a_problem_the_mapping_can_report() -> None:
    # "malformed-json" also comes from "not a string (VR)", built where it is reported
    assert {p.code for p in _module_problems()} | {"malformed-json"} == set(WARNING_CODES)


def test_an_uncatalogued_code_is_refused() -> None:
    with pytest.raises(ValueError, match="uncatalogued"):
        Problem("no-such-code", "whatever")


def test_unknown_body_part_warning_has_its_code_and_keeps_the_value_apart() -> None:
    result = default_engine().map_study(
        study(series_attrs={1: {"BodyPartExamined": "ELBOWX"}}), endpoint=ENDPOINT
    )
    [warning] = [w for w in result.warnings if w.tag.endswith("BodyPartExamined")]
    assert (warning.code, warning.value) == ("unknown-body-part", "ELBOWX")
    assert WARNING_CODES[warning.code].value_is_term
    assert result.to_json()["warnings"][0]["code"] == warning.code


def test_no_warning_sentence_contains_its_value() -> None:
    instances = json.loads((GOLDEN / "garbage_values.in.json").read_text(encoding="utf-8"))
    result = default_engine().map_study(instances["instances"], endpoint=ENDPOINT)
    assert len({w.code for w in result.warnings}) >= 10  # the golden input is thoroughly bad
    for warning in result.warnings:
        assert warning.code in WARNING_CODES
        if warning.value and len(warning.value) > 2:
            assert warning.value not in warning.problem, warning
