"""No logged value can forge a log line or make a field ambiguous (issue 12 item 15).

Archive-supplied strings (a StudyInstanceUID ``1.2.3.abc<script>``, a value with a newline)
end up in log fields.  In the text form a newline in a value started a new, forged record
and a space or ``=`` made ``key=value`` pairs ambiguous; in the JSON form a field named like
a reserved key replaced it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

import pytest

from bridge.logging import JsonFormatter, PlainFormatter, escape_value

FORGED = "1.2.3\n2026-01-01 00:00:00,000 INFO bridge.sync: study synced study_uid=9.9.9"
NASTY = [
    FORGED,
    "1.2.3.abc<script>",
    "a\rb", "a\tb", "a\x1b[31mred", "a\x00b", "a\x85b", "a\u2028b", "a\u2029b",
    "a\u202eb",  # right-to-left override: reorders what a terminal shows
    'a b', "a=b", 'a"b', "a\\nb", "", " ",
]
_PLAIN = PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _record(msg: str = "study synced", args: Any = None, raising: bool = False,
            **extra: Any) -> logging.LogRecord:
    exc_info = None
    if raising:
        try:
            raise ValueError("bad value\nforged line")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("bridge.sync", logging.WARNING, __file__, 1, msg, args,
                               exc_info)
    record.__dict__.update(extra)
    return record


_BARE = r"[^\s\"=\\]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_PAIR = re.compile(rf"([A-Za-z0-9_.-]+)=({_BARE}|{_QUOTED})(?: |$)")


def _parse_fields(text: str) -> dict[str, str]:
    """Read the ``key=value`` pairs after the message back, undoing the escapes."""
    fields: dict[str, str] = {}
    tail = text.split(": study synced ", 1)[1]
    pos = 0
    while pos < len(tail):
        match = _PAIR.match(tail, pos)
        assert match, f"ambiguous fields at {tail[pos:]!r}"
        raw = match.group(2)
        if raw.startswith('"'):
            raw = json.loads(raw)
        fields[match.group(1)] = raw
        pos = match.end()
    return fields


@pytest.mark.parametrize("value", NASTY)
def test_a_text_record_is_one_line_whose_fields_read_back_exactly(value: str) -> None:
    line = _PLAIN.format(_record(study_uid=value, archive="main"))
    assert "\n" not in line and "\r" not in line
    assert not any(c in line for c in "\x1b\x00\x85\u2028\u2029\u202e")
    fields = _parse_fields(line)
    assert fields == {"archive": "main", "study_uid": value}


@pytest.mark.parametrize("value", NASTY)
def test_a_json_record_is_one_line_whose_fields_read_back_exactly(value: str) -> None:
    line = JsonFormatter().format(_record(study_uid=value))
    assert len(line.splitlines()) == 1
    assert json.loads(line)["study_uid"] == value


def test_a_field_cannot_replace_the_json_records_own_keys() -> None:
    line = JsonFormatter().format(_record(level="INFO", logger="x", time="t", exc="none"))
    doc = json.loads(line)
    assert (doc["level"], doc["logger"], doc["message"]) == ("WARNING", "bridge.sync",
                                                             "study synced")
    assert doc["time"] != "t"
    assert "exc" not in doc  # no exception: the record's own key stays absent
    # the colliding fields are kept, under a name of their own
    assert (doc["x_level"], doc["x_logger"], doc["x_time"], doc["x_exc"]) == (
        "INFO", "x", "t", "none")


def test_message_arguments_cannot_forge_a_line() -> None:
    line = _PLAIN.format(_record("study %s synced", (FORGED,)))
    assert len(line.splitlines()) == 1
    assert "\\n2026-01-01" in line


def test_an_exception_message_cannot_start_a_forged_line() -> None:
    text = _PLAIN.format(_record(raising=True, study_uid="1.2"))
    first, *rest = text.splitlines()
    assert first.endswith("study_uid=1.2")
    assert rest and all(line.startswith("  ") for line in rest)
    assert any("forged line" in line for line in rest)


def test_field_values_are_redacted_like_messages() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.c2lnbmF0dXJlLXZhbHVl"
    record = _record(detail=f"upstream said Bearer {token}")
    assert token not in _PLAIN.format(record)
    assert token not in JsonFormatter().format(record)


def test_plain_values_stay_bare() -> None:
    assert escape_value("1.2.840.10008.1") == "1.2.840.10008.1"
    assert escape_value("archive-unavailable") == "archive-unavailable"
    assert escape_value(3) == "3"
    assert escape_value("a b") == '"a b"'
    assert escape_value("a\nb") == '"a\\nb"'


def test_uvicorns_colour_copy_of_the_message_is_left_out() -> None:
    record = _record(color_message="Started server process [\x1b[36m%d\x1b[0m]")
    assert "color_message" not in _PLAIN.format(record)
    assert "color_message" not in json.loads(JsonFormatter().format(record))
