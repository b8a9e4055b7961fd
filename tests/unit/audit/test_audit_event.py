"""The AuditEvent of an access decision (FHIR R4, IHE BALP shape; issue 20 item 9),
checked against an independent R4 model implementation (fhirclient, strict parsing)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from fhirclient.models.auditevent import AuditEvent

from bridge.audit import EVENT_CODES, Action, Actor, AuditRecord, Outcome, audit_event

DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _record(**kw: object) -> AuditRecord:
    base: dict[str, object] = dict(
        source="gateway", action=Action.READ, outcome=Outcome.PERMITTED, status=200,
        actor=Actor(kind="smart", client_id="viewer-app", user="Practitioner/7",
                    address="192.0.2.10"),
        patient="Patient/123", studies=("1.2.840.1",), archive="main",
        recorded=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))
    base.update(kw)
    return AuditRecord(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("action", list(Action))
def test_every_action_gives_a_valid_r4_audit_event(action: Action) -> None:
    event = audit_event(_record(action=action), observer="bridge",
                        server_address="https://bridge.example.org")
    AuditEvent(event, strict=True)  # raises on any element R4 does not define
    kind, subtypes, code = EVENT_CODES[action]
    assert event["type"] == kind and event["action"] == code
    assert event.get("subtype", []) == subtypes


def test_a_permitted_read_names_client_user_server_patient_and_study() -> None:
    event = audit_event(_record(), observer="bridge", server_address="https://b.example")
    assert event["recorded"] == "2026-01-02T03:04:05.678Z"
    assert event["outcome"] == "0"
    assert event["type"]["code"] == "rest"
    assert {(c["system"], c["code"]) for c in event["subtype"]} == {
        ("http://hl7.org/fhir/restful-interaction", "read"), (DCM, "110103")}
    user, client, server = event["agent"]
    assert user["requestor"] is True and user["who"]["identifier"]["value"] == "Practitioner/7"
    assert client["type"]["coding"][0]["code"] == "110153"  # Source Role ID
    assert client["who"]["identifier"]["value"] == "viewer-app"
    assert client["network"] == {"address": "192.0.2.10", "type": "2"}
    assert server["type"]["coding"][0]["code"] == "110152"  # Destination Role ID
    assert server["network"] == {"address": "https://b.example", "type": "5"}
    patient, study = event["entity"]
    assert patient["what"] == {"reference": "Patient/123"}
    assert (patient["type"]["code"], patient["role"]["code"]) == ("1", "1")
    assert study["what"]["identifier"]["value"] == "urn:oid:1.2.840.1"
    assert study["what"]["identifier"]["type"]["coding"][0]["code"] == "110180"
    assert (study["type"]["code"], study["role"]["code"]) == ("2", "3")
    assert study["detail"] == [{"type": "archive", "valueString": "main"}]


def test_a_refused_query_has_outcome_4_the_reason_and_the_query_entity() -> None:
    event = audit_event(_record(
        action=Action.QUERY, outcome=Outcome.REFUSED, status=403, reason="forbidden",
        detail="the study is not in the token's patient compartment", studies=(),
        patient="urn:mrn|42", actor=Actor(kind="viewer"),
        query="/dicom-web/studies?PatientID=9"), observer="bridge")
    assert event["outcome"] == "4"
    assert event["outcomeDesc"] == ("refused (forbidden): the study is not in the token's "
                                    "patient compartment; HTTP 403")
    assert event["agent"][0]["requestor"] is True  # no user: the client is the requestor
    assert event["agent"][0]["who"] == {"display": "viewer client"}
    patient, query = event["entity"]
    assert patient["what"] == {"identifier": {"system": "urn:mrn", "value": "42"}}
    assert query["role"]["code"] == "24"
    assert base64.b64decode(query["query"]).decode() == "/dicom-web/studies?PatientID=9"


def test_a_failure_to_answer_is_outcome_8() -> None:
    event = audit_event(_record(outcome=Outcome.FAILED, status=503,
                                reason="archive-unavailable"), observer="bridge")
    assert event["outcome"] == "8"
