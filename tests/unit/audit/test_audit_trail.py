"""The audit trail's writer: bounded, batched, never waited for; aggregation; failures
counted and logged (issue 20 item 9)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence

import httpx
import pytest
from prometheus_client import REGISTRY

from bridge.audit import Action, Actor, AuditRecord, AuditTrail, FhirAuditSink, Outcome
from bridge.config import FhirSettings
from bridge.fhir.client import FhirClient


def _record(study: str = "1.2.3", outcome: Outcome = Outcome.PERMITTED,
            patient: str = "Patient/p1") -> AuditRecord:
    return AuditRecord(source="gateway", action=Action.READ, outcome=outcome,
                       actor=Actor(kind="viewer", address="10.0.0.1"), status=200,
                       patient=patient, studies=(study,))


def _count(result: str) -> float:
    return REGISTRY.get_sample_value("bridge_audit_records_total", {"result": result}) or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ListSink:
    def __init__(self) -> None:
        self.batches: list[list[AuditRecord]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, records: Sequence[AuditRecord]) -> int:
        await self.gate.wait()
        self.batches.append(list(records))
        return len(records)

    async def aclose(self) -> None:
        return None


async def test_repeats_of_one_decision_within_the_window_are_counted_not_recorded() -> None:
    clock, sink = Clock(), ListSink()
    trail = AuditTrail(sink=sink, aggregate_seconds=60, clock=clock)
    coalesced = _count("coalesced")
    assert trail.record(_record())
    assert not trail.record(_record())  # the same study again: a frame, a series...
    assert trail.record(_record(outcome=Outcome.REFUSED))  # another decision
    assert trail.record(_record(study="1.2.4"))  # another study
    assert trail.record(AuditRecord(  # the same request from another address
        source="gateway", action=Action.READ, outcome=Outcome.PERMITTED, status=200,
        actor=Actor(kind="viewer", address="10.0.0.2"), patient="Patient/p1",
        studies=("1.2.3",)))
    clock.now += 60
    assert trail.record(_record())  # a new window: recorded again
    await trail.flush()
    assert sum(len(b) for b in sink.batches) == 5
    assert _count("coalesced") - coalesced == 1
    await trail.aclose()


async def test_a_hanging_audit_server_never_holds_up_a_request_and_overflow_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = ListSink()
    sink.gate.clear()  # the audit server does not answer
    trail = AuditTrail(sink=sink, queue_size=2, aggregate_seconds=0, close_timeout=0.01)
    dropped = _count("dropped")
    trail.record(_record("1.1"))
    await asyncio.sleep(0)  # the writer takes the first record and waits on the server
    with caplog.at_level(logging.WARNING, logger="bridge.audit"):
        for n in range(2, 7):
            trail.record(_record(f"1.{n}"))  # returns at once, whatever the server does
    assert _count("dropped") - dropped == 3  # 2 wait in the queue, 3 had no room
    warnings = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(warnings) == 1  # one line, not one per record
    sink.gate.set()
    await trail.flush()
    assert [r.studies[0] for b in sink.batches for r in b] == ["1.1", "1.2", "1.3"]
    await trail.aclose()


async def test_waiting_records_go_in_one_batch_bundle_up_to_batch_size() -> None:
    sink = ListSink()
    sink.gate.clear()
    trail = AuditTrail(sink=sink, batch_size=3, aggregate_seconds=0)
    trail.record(_record("2.0"))
    await asyncio.sleep(0)  # first batch in flight
    for n in range(1, 6):
        trail.record(_record(f"2.{n}"))
    sink.gate.set()
    await trail.flush()
    assert [len(b) for b in sink.batches] == [1, 3, 2]
    await trail.aclose()


def _audit_server(answer: httpx.Response | None, seen: list[dict[str, object]]
                  ) -> FhirClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        if answer is None:
            raise httpx.ConnectError("refused")
        return answer

    return FhirClient(FhirSettings(base_url="http://audit.test/fhir"),
                      transport=httpx.MockTransport(handler))


async def test_fhir_sink_posts_a_batch_bundle_of_audit_events() -> None:
    seen: list[dict[str, object]] = []
    ok = httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response",
                                   "entry": [{"response": {"status": "201 Created"}}] * 2})
    sink = FhirAuditSink(_audit_server(ok, seen), observer="bridge-test")
    assert await sink.write([_record("3.1"), _record("3.2")]) == 2
    bundle = seen[0]
    assert bundle["type"] == "batch"
    entries = bundle["entry"]
    assert isinstance(entries, list) and len(entries) == 2
    assert {e["request"]["method"] for e in entries} == {"POST"}
    assert {e["resource"]["resourceType"] for e in entries} == {"AuditEvent"}
    await sink.aclose()


@pytest.mark.parametrize("answer", [
    None,  # unreachable
    httpx.Response(500, json={"resourceType": "OperationOutcome"}),
    httpx.Response(200, json={"resourceType": "Bundle", "entry": [
        {"response": {"status": "201 Created"}},
        {"response": {"status": "400 Bad Request"}}]}),
])
async def test_a_failing_audit_server_is_counted_and_logged_clearly(
    answer: httpx.Response | None, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, object]] = []
    trail = AuditTrail(sink=FhirAuditSink(_audit_server(answer, seen), observer="t"),
                       aggregate_seconds=0)
    failed, written = _count("failed"), _count("written")
    with caplog.at_level(logging.ERROR):
        trail.record(_record("4.1"))
        trail.record(_record("4.2"))
        await trail.flush()
    lost = 1 if answer is not None and answer.status_code == 200 else 2
    assert _count("failed") - failed == lost
    assert _count("written") - written == 2 - lost
    errors = [r for r in caplog.records if r.getMessage().startswith("audit sink failed")]
    assert errors and errors[0].records == lost  # type: ignore[attr-defined]
    assert errors[0].audit_server == "http://audit.test/fhir"  # type: ignore[attr-defined]
    await trail.aclose()


async def test_log_line_per_record_names_no_patient_user_or_query() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("bridge.audit")
    handler = Keep(level=logging.INFO)
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        trail = AuditTrail(sink=None)
        trail.record(AuditRecord(
            source="gateway", action=Action.QUERY, outcome=Outcome.REFUSED, status=403,
            actor=Actor(kind="smart", client_id="app-1", user="Practitioner/doc-9"),
            patient="urn:mrn|MRN-555", query="/dicom-web/studies?PatientName=DOE^JANE",
            reason="forbidden"))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    (line,) = records
    text = line.getMessage() + " " + " ".join(f"{k}={v}" for k, v in vars(line).items())
    for private in ("MRN-555", "doc-9", "DOE", "PatientName"):
        assert private not in text
    assert line.client_id == "app-1" and line.user_identified is True  # type: ignore[attr-defined]


def test_the_trail_keeps_writing_when_the_app_is_served_by_another_event_loop() -> None:
    sink = ListSink()
    trail = AuditTrail(sink=sink, aggregate_seconds=0)

    async def one(study: str) -> None:
        trail.record(_record(study))
        await trail.flush()

    asyncio.run(one("5.1"))  # e.g. one test client's loop, then another's
    asyncio.run(one("5.2"))
    assert [r.studies[0] for b in sink.batches for r in b] == ["5.1", "5.2"]
