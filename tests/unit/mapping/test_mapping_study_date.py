"""A study with an unusable StudyDate still maps, without ``started``, with a warning naming
(0008,0020) StudyDate (issue 12 item 3); it never fails the study."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from mapping_helpers import DEFAULT_YAML, ENDPOINT, assert_valid, study

from bridge.mapping import MappingEngine, MappingResult, load_mapping

TODAY = dt.date(2026, 12, 7)
ENGINE = MappingEngine(load_mapping([DEFAULT_YAML]), today=lambda: TODAY)
STUDY_DATE = "(0008,0020) StudyDate"


def mapped(study_date: Any, **attrs: Any) -> MappingResult:
    result = ENGINE.map_study(
        study(study_attrs={"StudyDate": study_date, **attrs}), endpoint=ENDPOINT
    )
    assert_valid(result)
    return result


def date_codes(result: MappingResult) -> set[str]:
    return {w.code for w in result.warnings if w.tag == STUDY_DATE}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "missing-study-date"),  # present, empty (Type 2)
        ("", "missing-study-date"),
        ("  ", "missing-study-date"),
        ("abcdefgh", "invalid-date"),
        ("20241301", "invalid-date"),
        ("18000101", "implausible-date"),
        ("00010101", "implausible-date"),
    ],
)
def test_unusable_study_date_maps_without_started_and_warns(value: Any, code: str) -> None:
    result = mapped(value)
    assert "started" not in result.imaging_study
    assert date_codes(result) == {code}
    assert result.imaging_study["series"]  # the study itself is whole


def test_absent_study_date_maps_without_started_and_warns() -> None:
    instances = study()
    for instance in instances:
        del instance["00080020"]
    result = ENGINE.map_study(instances, endpoint=ENDPOINT)
    assert_valid(result)
    assert "started" not in result.imaging_study
    assert date_codes(result) == {"missing-study-date"}


def test_an_old_but_possible_study_date_maps_normally() -> None:
    result = mapped("19750101")
    assert result.imaging_study["started"] == "1975-01-01T10:15:30+01:00"
    assert result.warnings == []


def test_a_future_study_date_maps_and_warns() -> None:
    result = mapped("20990101")
    assert result.imaging_study["started"] == "2099-01-01T10:15:30+01:00"
    assert date_codes(result) == {"future-date"}


def test_today_and_tomorrow_are_not_the_future() -> None:
    # a study taken after midnight east of UTC is dated "tomorrow" in UTC terms
    for day in (TODAY, TODAY + dt.timedelta(days=1)):
        assert mapped(day.strftime("%Y%m%d")).warnings == []
    assert date_codes(mapped((TODAY + dt.timedelta(days=2)).strftime("%Y%m%d"))) == {
        "future-date"
    }


def test_implausible_series_date_is_left_out_too() -> None:
    result = ENGINE.map_study(
        study(series_attrs={1: {"SeriesDate": "18500101", "SeriesTime": "101500"}}),
        endpoint=ENDPOINT,
    )
    assert "started" not in result.imaging_study["series"][0]
    assert {w.code for w in result.warnings if w.tag == "(0008,0021) SeriesDate"} == {
        "implausible-date"
    }


def test_an_absent_series_date_is_normal() -> None:
    # SeriesDate is Type 3: its absence is no warning (only StudyDate's is)
    result = mapped("20240115")
    assert "started" not in result.imaging_study["series"][0]
    assert result.warnings == []
