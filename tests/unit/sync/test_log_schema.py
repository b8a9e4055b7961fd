"""The main log lines, emitted by the real code and written by the JSON formatter, match
docs/log-schema.md: every documented key present with its type, none undocumented, and
nothing of the patient (issue 13, interface conventions)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.audit import Action, Actor, AuditRecord, AuditTrail, Outcome
from bridge.logging import JsonFormatter, RedactingFilter
from tests.unit.sync.fakes import FakeArchive, FakeFhir, Rig, studies

SCHEMA_DOC = Path(__file__).resolve().parents[3] / "docs" / "log-schema.md"
EVERY = "every record"
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
    "null": (type(None),),
}


@dataclass(frozen=True)
class Field:
    name: str
    types: tuple[type, ...]
    #: messages whose records always carry the field; EVERY for all; empty for optional
    on: tuple[str, ...]


def _schema() -> dict[str, Field]:
    """The field table of docs/log-schema.md, read as data."""
    fields: dict[str, Field] = {}
    for line in SCHEMA_DOC.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if len(cells) != 4 or cells[0] in ("key", "") or set(cells[0]) <= {"-"}:
            continue
        name, kind, present, _meaning = cells
        types = tuple(t for part in kind.replace("\\|", "|").split("|")
                      for t in _TYPES[part.strip()])
        on = (EVERY,) if present == EVERY else tuple(re.findall(r'"([^"]+)"', present))
        fields[name] = Field(name, types, on)
    return fields


def _json_lines(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    formatter, redacting = JsonFormatter(), RedactingFilter()
    out = []
    for record in records:
        redacting.filter(record)
        line = formatter.format(record)
        assert "\n" not in line
        out.append(json.loads(line))
    return out


def _check(doc: dict[str, Any], schema: dict[str, Field]) -> None:
    message = doc["message"]
    required = [f for f in schema.values() if EVERY in f.on or message in f.on]
    for field in required:
        assert field.name in doc, f"{message!r} lacks {field.name!r}"
        value = doc[field.name]
        # bool is an int in Python: an integer field must not be a boolean
        assert isinstance(value, field.types) and not (
            isinstance(value, bool) and bool not in field.types
        ), f"{message!r}: {field.name}={value!r} is not {field.types}"
    undocumented = set(doc) - set(schema)
    assert undocumented == set(), f"{message!r} carries undocumented keys {undocumented}"


def test_schema_doc_names_the_fields_operators_search_on() -> None:
    schema = _schema()
    for name in ("time", "level", "logger", "message"):
        assert schema[name].on == (EVERY,)
    for name in ("study_uid", "archive", "outcome", "duration_ms", "error_type"):
        assert name in schema
    assert schema["duration_ms"].types == (int,)


def test_json_formatter_derives_integer_duration_ms_from_seconds() -> None:
    record = logging.LogRecord("bridge.sync.runner", logging.INFO, __file__, 1,
                               "study synced", (), None)
    record.seconds = 1.2346
    [doc] = _json_lines([record])
    assert doc["duration_ms"] == 1235 and doc["seconds"] == 1.2346


async def test_sync_lines_match_the_documented_schema(
    rig: Rig, archive: FakeArchive, fhir: FakeFhir, caplog: pytest.LogCaptureFixture
) -> None:
    ok, rejected, busy = batch = studies(3)
    for s in batch:
        archive.add(s)
        fhir.patients.add(f"{s.truth.patient_system}|{s.truth.patient_id}")
    fhir.reject.add(rejected.study_uid)
    fhir.entry_busy.add(busy.study_uid)
    rig.mark(*(s.study_uid for s in batch))

    with caplog.at_level(logging.INFO, logger="bridge.sync.runner"):
        await rig.runner.run_once()

    schema = _schema()
    wanted = {"study synced", "study sync failed", "study sync deferred"}
    docs = [d for d in _json_lines(caplog.records) if d["message"] in wanted]
    by_message = {d["message"]: d for d in docs}
    assert set(by_message) == wanted
    for doc in docs:
        _check(doc, schema)
    assert by_message["study synced"]["study_uid"] == ok.study_uid
    assert by_message["study synced"]["outcome"] in ("create", "update")
    assert by_message["study sync failed"]["outcome"] == "failed"
    assert by_message["study sync failed"]["error_type"] == "fhir-rejected"
    assert by_message["study sync deferred"]["outcome"] == "deferred"
    assert by_message["study sync deferred"]["error_type"] == "fhir-unavailable"
    text = json.dumps(docs)
    for s in batch:
        assert s.truth.patient_id not in text


@pytest.mark.parametrize("outcome", list(Outcome))
def test_gateway_access_decision_line_matches_the_documented_schema(
    outcome: Outcome, caplog: pytest.LogCaptureFixture
) -> None:
    trail = AuditTrail(sink=None, aggregate_seconds=0)
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwMSJ9.c2lnbmF0dXJlc2ln"
    record = AuditRecord(
        source="gateway", action=Action.READ, outcome=outcome,
        actor=Actor(kind="viewer", client_id="viewer-app", user="Practitioner/12",
                    address="10.0.0.1", session="ref-1"),
        status=200 if outcome is Outcome.PERMITTED else 403,
        patient="Patient/p-secret-42", studies=("1.2.3",), archive="orthanc",
        reason=None if outcome is Outcome.PERMITTED else f"forbidden {token}")
    with caplog.at_level(logging.INFO, logger="bridge.audit"):
        assert trail.record(record)

    [doc] = [d for d in _json_lines(caplog.records) if d["message"] == "access decision"]
    _check(doc, _schema())
    assert doc["outcome"] == outcome.value and doc["source"] == "gateway"
    assert doc["study_uid"] == "1.2.3" and doc["archive"] == "orthanc"
    line = json.dumps(doc)
    for secret in ("p-secret-42", "Practitioner/12", token):
        assert secret not in line
