"""The diff behind ``mappings diff``: pure, structural, series and instances matched by uid."""

from __future__ import annotations

from pathlib import Path

import pytest
from mapping_helpers import (
    DEFAULT_YAML,
    ENDPOINT,
    SITE_YAML,
    code,
    default_engine,
    site_engine,
    study,
)

from bridge.cli_mapping import proposed_files
from bridge.errors import ConfigError
from bridge.mapping.diff import Change, compare_study, diff_json


def test_identical_values_have_no_changes() -> None:
    value = {"a": [1, {"b": "c"}], "d": None}
    assert diff_json(value, value) == []


def test_scalars_keys_and_list_items() -> None:
    old = {"a": 1, "b": [1, 2], "gone": True}
    new = {"a": 2, "b": [1, 2, 3], "new": "x"}
    assert diff_json(old, new) == [
        Change("a", "changed", 1, 2),
        Change("b[2]", "added", new=3),
        Change("gone", "removed", old=True),
        Change("new", "added", new="x"),
    ]


def test_type_change_is_a_change() -> None:
    assert diff_json({"n": 1}, {"n": "1"}) == [Change("n", "changed", 1, "1")]


def test_lists_of_uids_are_matched_by_uid() -> None:
    old = {"series": [{"uid": "1", "n": 1}, {"uid": "2", "n": 2}]}
    new = {"series": [{"uid": "0", "n": 0}, {"uid": "1", "n": 1}, {"uid": "2", "n": 3}]}
    assert diff_json(old, new) == [
        Change("series[uid=2].n", "changed", 2, 3),
        Change("series[uid=0]", "added", new={"uid": "0", "n": 0}),
    ]


def test_change_renders_as_one_line() -> None:
    assert str(Change("a.b", "changed", "x", "y")) == '~ a.b: "x" -> "y"'
    assert str(Change("a", "added", new=[1])) == "+ a: [1]"


def test_compare_study_shows_what_a_site_mapping_changes() -> None:
    instances = study(
        study_attrs={
            "ProcedureCodeSequence": [code("CTCHEST", "99HOSPA", "CT Chest")],
            "TimezoneOffsetFromUTC": None,
        },
        series_attrs={1: {"BodyPartExamined": "Thorax"}},
    )
    result = compare_study(default_engine(), site_engine(), instances, endpoint=ENDPOINT)
    assert result.changed
    paths = {c.path for c in result.imaging_study}
    assert "started" in paths
    assert "series[uid=1.2.826.0.1.3680043.10.543.1.1].bodySite" in paths
    assert any(p.startswith("procedureCode[0].coding") for p in paths)
    assert any("unknown body part" in w for w in result.warnings_removed)
    assert any(line.startswith("ImagingStudy + series[uid=") for line in result.lines())


def test_compare_study_reports_errors_instead_of_raising() -> None:
    instances = study()
    for instance in instances:
        del instance["0020000E"]
    result = compare_study(
        default_engine(), site_engine(), instances, endpoint=ENDPOINT, study_uid="1.2.3"
    )
    assert result.study_uid == "1.2.3"
    assert result.error_current == result.error_proposed
    assert not result.changed


def test_same_mapping_changes_nothing() -> None:
    engine = site_engine()
    assert not compare_study(engine, engine, study(), endpoint=ENDPOINT).changed


def test_proposed_file_replaces_or_layers_as_the_mode_says(tmp_path: Path) -> None:
    edited = tmp_path / "site-example.yaml"
    current = [DEFAULT_YAML, SITE_YAML]
    assert proposed_files(current, edited, "replace") == [DEFAULT_YAML, edited]
    assert proposed_files(current, edited, "layer") == [DEFAULT_YAML, SITE_YAML, edited]
    other = tmp_path / "site-b.yaml"
    assert proposed_files(current, other, "layer") == [DEFAULT_YAML, SITE_YAML, other]
    with pytest.raises(ConfigError, match=r"no current mapping file is named site-b\.yaml"):
        proposed_files(current, other, "replace")
