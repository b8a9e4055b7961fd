"""DICOM DA/TM and TimezoneOffsetFromUTC to FHIR R4 ``date`` / ``dateTime``.

FHIR R4 dateTime (2.24.0.2): ``YYYY``, ``YYYY-MM``, ``YYYY-MM-DD`` or
``YYYY-MM-DDThh:mm:ss[.f]`` followed by a zone: "If hours and minutes are specified, a time
zone SHALL be populated".  Hence the rules, decided here and documented in
docs/mapping-reference.md:

* the zone is TimezoneOffsetFromUTC (0008,0201) when present and valid; otherwise the
  mapping's ``timezone`` (an IANA name, applied with :mod:`zoneinfo` to that local date and
  time, so daylight saving is right); otherwise the time is dropped and ``started`` has date
  precision, with a warning;
* TM with hours and minutes but no seconds gets ``:00`` seconds (FHIR needs seconds); TM with
  hours only cannot be stated in FHIR and gives date precision, with a warning;
* fractional seconds are kept as given (up to the 6 digits TM allows);
* a DA of ``YYYY`` or ``YYYYMM`` (not conformant, but seen) gives a reduced-precision date
  with a warning, and no time; the ACR-NEMA form ``YYYY.MM.DD`` (PS3.5 6.2 DA note) is read.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from bridge.mapping.problems import Problem

_DA: Final = re.compile(r"([0-9]{4})(?:\.?([0-9]{2})(?:\.?([0-9]{2}))?)?")
_TM: Final = re.compile(r"([0-9]{2})(?::?([0-9]{2})(?::?([0-9]{2})(?:\.([0-9]{1,6}))?)?)?")
_OFFSET: Final = re.compile(r"([+-])([0-9]{2})([0-9]{2})")

BAD_DATE = Problem("invalid-date", "not a valid date (DA, PS3.5 6.2)")
BAD_TIME = Problem("invalid-time", "not a valid time (TM, PS3.5 6.2)")
BAD_OFFSET = Problem(
    "invalid-timezone-offset", "not a valid offset (&ZZXX, -1200 to +1400, PS3.3 C.12.1.1.8)"
)
PARTIAL_DATE = Problem(
    "partial-date", "date lacks month or day: used with reduced precision, time dropped"
)
HOUR_ONLY = Problem(
    "hour-only-time", "time has hours only; FHIR dateTime needs minutes: date precision used"
)
#: Roentgen's discovery of X-rays (8 November 1895, Wuerzburg): no earlier date can be the
#: day an image was acquired, and such dates are placeholders ("00010101", "18000101")
EARLIEST_IMAGING: Final = dt.date(1895, 11, 8)
IMPLAUSIBLE_DATE = Problem(
    "implausible-date", "before 1895, when X-rays were discovered: a placeholder, left out"
)
FUTURE_DATE = Problem(
    "future-date", "after tomorrow (UTC): kept, but the modality's clock is probably wrong"
)
NO_ZONE = Problem(
    "no-timezone",
    "absent and the mapping sets no timezone: started has date precision "
    "(FHIR R4 dateTime with a time needs a zone)",
)


class Date(NamedTuple):
    """A parsed DA: ``text`` is the FHIR date; ``full`` is False for YYYY or YYYY-MM."""

    text: str
    year: int
    month: int
    day: int
    full: bool


class Time(NamedTuple):
    """A parsed TM: minute is None for hour-only values, fraction is the digits after '.'."""

    hour: int
    minute: int | None
    second: int
    fraction: str


def parse_date(value: str) -> tuple[Date | None, Problem | None]:
    """Parse a DA value into a FHIR date; ``(None, problem)`` when it is not a date."""
    match = _DA.fullmatch(value)
    if match is None:
        return None, BAD_DATE
    year_s, month_s, day_s = match.groups()
    year = int(year_s)
    month = int(month_s) if month_s else 1
    day = int(day_s) if day_s else 1
    try:
        dt.date(year, month, day)
    except ValueError:
        return None, BAD_DATE
    if year == 0:
        return None, BAD_DATE
    if day_s:
        return Date(f"{year_s}-{month_s}-{day_s}", year, month, day, True), None
    text = f"{year_s}-{month_s}" if month_s else year_s
    return Date(text, year, month, day, False), PARTIAL_DATE


def parse_time(value: str) -> tuple[Time | None, Problem | None]:
    """Parse a TM value (``HH``, ``HHMM``, ``HHMMSS``, ``HHMMSS.F…``, or ``HH:MM:SS``)."""
    match = _TM.fullmatch(value)
    if match is None:
        return None, BAD_TIME
    hour_s, minute_s, second_s, fraction = match.groups()
    hour = int(hour_s)
    minute = int(minute_s) if minute_s else None
    second = int(second_s) if second_s else 0
    # PS3.5 6.2 TM: HH 00-23, MM 00-59, SS 00-60 (60 for a leap second)
    if hour > 23 or (minute is not None and minute > 59) or second > 60:
        return None, BAD_TIME
    return Time(hour, minute, second, fraction or ""), None


def parse_offset(value: str) -> tuple[int | None, Problem | None]:
    """Parse TimezoneOffsetFromUTC ``&ZZXX`` into minutes east of UTC."""
    match = _OFFSET.fullmatch(value)
    if match is None:
        return None, BAD_OFFSET
    sign, hours, minutes = match.groups()
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > 14 * 60 or (sign == "-" and total > 12 * 60):
        return None, BAD_OFFSET
    return (-total if sign == "-" else total), None


def format_offset(minutes: int) -> str:
    """Minutes east of UTC as a FHIR zone ``+hh:mm``."""
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def zone_offset(date: Date, time: Time, zone: ZoneInfo) -> int:
    """The zone's UTC offset in minutes at that local date and time (first of a repeated hour)."""
    local = dt.datetime(
        date.year,
        date.month,
        date.day,
        time.hour,
        time.minute or 0,
        min(time.second, 59),
        tzinfo=zone,
    )
    offset = local.utcoffset()
    return 0 if offset is None else int(offset.total_seconds() // 60)


def fhir_datetime(date: Date, time: Time | None, offset_minutes: int | None) -> str:
    """Combine a full date, an optional time and a known zone offset into a FHIR dateTime."""
    if time is None or time.minute is None or offset_minutes is None or not date.full:
        return date.text
    fraction = f".{time.fraction}" if time.fraction else ""
    return (
        f"{date.text}T{time.hour:02d}:{time.minute:02d}:{time.second:02d}{fraction}"
        f"{format_offset(offset_minutes)}"
    )


def acquisition_problem(date: Date, today: dt.date | None) -> Problem | None:
    """Why a study or series date cannot be an acquisition date, if it cannot.

    Before 1895 it is a placeholder (left out); after tomorrow (a study taken after midnight
    east of UTC is dated tomorrow in UTC) it is a wrong clock (kept: the day may be wrong,
    but it orders the study among its neighbours).  ``today`` is None when not known.
    """
    day = dt.date(date.year, date.month, date.day)
    if date.year < EARLIEST_IMAGING.year or (date.full and day < EARLIEST_IMAGING):
        return IMPLAUSIBLE_DATE
    if today is not None and day > today + dt.timedelta(days=1):
        return FUTURE_DATE
    return None
