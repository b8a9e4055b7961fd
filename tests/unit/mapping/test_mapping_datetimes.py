"""DA/TM/offset to FHIR R4 date and dateTime (rules in bridge/mapping/datetimes.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from bridge.mapping import datetimes as dts


@pytest.mark.parametrize(
    ("value", "text", "full"),
    [
        ("20240115", "2024-01-15", True),
        ("2024.01.15", "2024-01-15", True),
        ("202401", "2024-01", False),
        ("2024", "2024", False),
    ],
)
def test_dates(value: str, text: str, full: bool) -> None:
    date, _ = dts.parse_date(value)
    assert date is not None and date.text == text and date.full is full


@pytest.mark.parametrize("value", ["20240230", "00000101", "2024011", "20241301", "abcdefgh"])
def test_invalid_dates(value: str) -> None:
    assert dts.parse_date(value) == (None, dts.BAD_DATE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("101530", (10, 15, 30, "")),
        ("1015", (10, 15, 0, "")),
        ("10", (10, None, 0, "")),
        ("101530.123456", (10, 15, 30, "123456")),
        ("10:15:30.5", (10, 15, 30, "5")),
        ("235960", (23, 59, 60, "")),
    ],
)
def test_times(value: str, expected: tuple[int, int | None, int, str]) -> None:
    assert dts.parse_time(value) == (dts.Time(*expected), None)


@pytest.mark.parametrize("value", ["2400", "1060", "101561", "1.5", "10153", "101530.1234567"])
def test_invalid_times(value: str) -> None:
    assert dts.parse_time(value) == (None, dts.BAD_TIME)


@pytest.mark.parametrize(
    ("value", "minutes"), [("+0100", 60), ("-0500", -300), ("+1400", 840), ("-1200", -720)]
)
def test_offsets(value: str, minutes: int) -> None:
    assert dts.parse_offset(value) == (minutes, None)
    assert dts.format_offset(minutes) == f"{value[:3]}:{value[3:]}"


@pytest.mark.parametrize("value", ["+1401", "-1300", "0100", "+01:00", "+0160"])
def test_invalid_offsets(value: str) -> None:
    assert dts.parse_offset(value) == (None, dts.BAD_OFFSET)


def test_zone_offsets_follow_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    date = dts.parse_date("20240331")[0]
    assert date is not None
    assert dts.zone_offset(date, dts.Time(1, 59, 0, ""), berlin) == 60
    assert dts.zone_offset(date, dts.Time(3, 0, 0, ""), berlin) == 120


def test_fhir_datetime_needs_minutes_a_zone_and_a_full_date() -> None:
    date = dts.parse_date("20240115")[0]
    partial = dts.parse_date("202401")[0]
    assert date is not None and partial is not None
    assert dts.fhir_datetime(date, dts.Time(8, 5, 3, "25"), 0) == "2024-01-15T08:05:03.25+00:00"
    assert dts.fhir_datetime(date, dts.Time(8, None, 0, ""), 0) == "2024-01-15"
    assert dts.fhir_datetime(date, dts.Time(8, 5, 3, ""), None) == "2024-01-15"
    assert dts.fhir_datetime(partial, dts.Time(8, 5, 3, ""), 60) == "2024-01"
