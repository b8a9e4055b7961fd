"""Audit trail and metrics of the gateway against real Orthanc, HAPI and the sandbox EHR
(issue 20 items 9 and 10).

Proves: a refused cross-patient request and a successful retrieval each become a FHIR R4
AuditEvent in HAPI (IHE BALP shape: patient and study entities, outcome, action, codes);
a viewer's many requests for one study make one AuditEvent; the audit log lines name no
patient and carry no token; the gateway's metrics count requests by route kind and status,
the bytes sent, the decisions and the latency.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.requests import Request

from bridge.gateway.tokens import TokenInfo
from tests.integration.conftest import Namespace
from tests.integration.gateway.gateway_helpers import World
from tests.integration.sync_helpers import fhir_search
from tests.support.servers import RunningGateway

DICOM_ALL = 'multipart/related; type="application/dicom"; transfer-syntax=*'
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _flush(bridge: RunningGateway) -> None:
    """Wait until the app's audit writer handed every queued record to HAPI (in the
    server's own event loop; nothing to wait for when the app has no audit trail)."""
    trail = getattr(bridge.app.state, "audit", None)
    if trail is not None and trail.loop is not None:
        asyncio.run_coroutine_threadsafe(trail.flush(), trail.loop).result(60)


def _events(hapi: Any, patient_id: str) -> list[dict[str, Any]]:
    return fhir_search(hapi, "AuditEvent", {"entity": f"Patient/{patient_id}",
                                            "_count": "200"})


def _studies(event: dict[str, Any]) -> list[str]:
    return [e["what"]["identifier"]["value"].removeprefix("urn:oid:")
            for e in event.get("entity", [])
            if e.get("role", {}).get("code") == "3"]


def _codes(codings: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(c["system"], c["code"]) for c in codings}


#: the SMART app session that minted the viewer token (its sid)
SESSION = "session-key-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def viewer_a(bridge: RunningGateway, world: World) -> str:
    token: str = bridge.gateway.viewer.mint(patient=f"Patient/{world.a.fhir_id}",
                                            session=SESSION)
    return token


def _client(bridge: RunningGateway, token: str) -> httpx.Client:
    return httpx.Client(base_url=bridge.dicomweb + "/", timeout=60,
                        headers={"Authorization": f"Bearer {token}"})


def test_refused_cross_patient_request_is_an_audit_event_in_hapi(
    bridge: RunningGateway, world: World, hapi: Any, viewer_a: str
) -> None:
    other = world.b.studies[0]
    with _client(bridge, viewer_a) as gw:
        assert gw.get(f"studies/{other}", headers={"Accept": DICOM_ALL}).status_code == 403
    _flush(bridge)
    refused = [e for e in _events(hapi, world.a.fhir_id) if other in _studies(e)]
    assert len(refused) == 1, refused
    event = refused[0]
    assert event["outcome"] == "4"  # minor failure: refused
    assert "forbidden" in event["outcomeDesc"] and "HTTP 403" in event["outcomeDesc"]
    assert event["action"] == "R"
    assert event["type"]["code"] == "rest"
    assert (DCM, "110103") in _codes(event["subtype"])
    roles = {e["role"]["code"] for e in event["entity"]}
    assert roles == {"1", "3"}  # the token's patient and the study it asked for
    patient = next(e for e in event["entity"] if e["role"]["code"] == "1")
    assert patient["what"]["reference"] == f"Patient/{world.a.fhir_id}"
    agents = {a["type"]["coding"][0]["code"]: a for a in event["agent"]}
    assert agents["110153"]["requestor"] is True  # the client (no fhirUser: it is the actor)
    assert agents["110153"]["network"]["address"] == "127.0.0.1"
    # the app session behind the viewer token, as the app's launch record names it
    ref = hashlib.sha256(b"imaging-bridge audit session:" + SESSION.encode()).hexdigest()[:32]
    assert agents["110153"]["policy"] == [ref]
    assert SESSION not in str(event)
    assert "110152" in agents  # the gateway


def test_successful_retrieval_is_one_audit_event_in_hapi_however_many_requests(
    bridge: RunningGateway, world: World, hapi: Any, viewer_a: str
) -> None:
    study = world.a.studies[0]
    with _client(bridge, viewer_a) as gw:
        whole = gw.get(f"studies/{study}", headers={"Accept": DICOM_ALL})
        assert whole.status_code == 200 and whole.content
        # what a viewer does next: metadata, and the study again (one decision per window)
        assert gw.get(f"studies/{study}/metadata").status_code == 200
        assert gw.get(f"studies/{study}", headers={"Accept": DICOM_ALL}).status_code == 200
    _flush(bridge)
    reads = [e for e in _events(hapi, world.a.fhir_id)
             if study in _studies(e) and e["outcome"] == "0"]
    assert len(reads) == 1, reads
    event = reads[0]
    assert event["action"] == "R"
    assert _codes(event["subtype"]) >= {("http://hl7.org/fhir/restful-interaction", "read"),
                                        (DCM, "110103")}
    study_entity = next(e for e in event["entity"] if e["role"]["code"] == "3")
    assert study_entity["what"]["identifier"]["type"]["coding"][0]["code"] == "110180"
    assert event["outcomeDesc"].startswith("permitted")


def test_patient_search_is_an_audit_event_with_the_query(
    bridge: RunningGateway, world: World, hapi: Any, viewer_a: str
) -> None:
    with _client(bridge, viewer_a) as gw:
        assert gw.get("studies", params={"ModalitiesInStudy": "CT"}).status_code == 200
    _flush(bridge)
    queries = [e for e in _events(hapi, world.a.fhir_id)
               if any(x.get("role", {}).get("code") == "24" for x in e.get("entity", []))]
    assert queries, "no Query AuditEvent"
    assert queries[0]["action"] == "E"
    assert (DCM, "110112") in _codes(queries[0]["subtype"])


#: the attributes every LogRecord has (time, process, source line...)
_LOG_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)))


def test_audit_log_lines_name_no_patient_and_carry_no_token(
    bridge: RunningGateway, world: World, viewer_a: str, caplog: pytest.LogCaptureFixture,
    ns: Namespace,
) -> None:
    other = ns.uid()  # a study that is not the patient's (here: nobody's), refused alike
    with caplog.at_level(logging.INFO, logger="bridge.audit"), \
            _client(bridge, viewer_a) as gw:
        assert gw.get(f"studies/{other}/metadata").status_code == 403
        _flush(bridge)
    lines = [r for r in caplog.records if r.name == "bridge.audit"
             and r.getMessage() == "access decision"]
    mine = [r for r in lines if getattr(r, "study_uid", None) == other]
    assert len(mine) == 1
    assert mine[0].outcome == "refused" and mine[0].reason == "forbidden"  # type: ignore[attr-defined]
    # what the line carries: its message and its fields, not the record's own bookkeeping
    # (a numeric FHIR id such as 4821 turns up by chance inside a timestamp or a PID),
    # and each secret as a whole word: a numeric id inside a UID's digits is not it
    fields = {k: v for k, v in vars(mine[0]).items() if k not in _LOG_RECORD_ATTRIBUTES}
    text = " ".join([mine[0].getMessage(), *(f"{k}={v}" for k, v in fields.items())])
    for secret in (viewer_a, world.a.fhir_id, world.a.value, world.b.value):
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text), \
            secret


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_gateway_metrics_count_requests_bytes_decisions_and_latency(
    bridge: RunningGateway, world: World, viewer_a: str
) -> None:
    study, other = world.a.studies[-1], world.b.studies[-1]
    ok = {"kind": "retrieve", "status": "200"}
    before = (_sample("bridge_gateway_requests_total", ok),
              _sample("bridge_gateway_response_bytes_total", {"kind": "retrieve"}),
              _sample("bridge_gateway_request_seconds_count", {"kind": "retrieve"}),
              _sample("bridge_gateway_requests_total", {"kind": "retrieve", "status": "403"}),
              _sample("bridge_access_decisions_total", {"source": "gateway", "action": "read",
                                                        "outcome": "refused"}),
              _sample("bridge_gateway_requests_total", {"kind": "qido", "status": "401"}))
    with _client(bridge, viewer_a) as gw:
        got = gw.get(f"studies/{study}", headers={"Accept": DICOM_ALL})
        assert got.status_code == 200
        assert gw.get(f"studies/{other}", headers={"Accept": DICOM_ALL}).status_code == 403
    assert httpx.get(f"{bridge.dicomweb}/studies", timeout=30).status_code == 401
    after = (_sample("bridge_gateway_requests_total", ok),
             _sample("bridge_gateway_response_bytes_total", {"kind": "retrieve"}),
             _sample("bridge_gateway_request_seconds_count", {"kind": "retrieve"}),
             _sample("bridge_gateway_requests_total", {"kind": "retrieve", "status": "403"}),
             _sample("bridge_access_decisions_total", {"source": "gateway", "action": "read",
                                                       "outcome": "refused"}),
             _sample("bridge_gateway_requests_total", {"kind": "qido", "status": "401"}))
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == len(got.content)  # the archive's bytes, as streamed
    assert after[2] - before[2] == 2  # the retrieval and the refusal
    assert after[3] - before[3] == 1
    assert after[4] - before[4] == 1
    assert after[5] - before[5] == 1


def test_iid_opened_and_refused_studies_are_audit_events_in_hapi(
    bridge: RunningGateway, world: World, hapi: Any
) -> None:
    session = TokenInfo(kind="smart", scopes=frozenset({"patient/ImagingStudy.rs"}),
                        patient=world.a.fhir_id, client_id="smart-app", expires_at=None)

    async def resolve(request: Request) -> TokenInfo | None:
        return session if request.cookies.get("iid_session") == "a" else None

    bridge.gateway.session_resolver = resolve
    mine, other = world.a.studies[-1], world.b.studies[-1]
    for study, status in ((mine, 303), (other, 403)):
        resp = httpx.get(f"{bridge.url}/IHEInvokeImageDisplay", timeout=30,
                         params={"requestType": "STUDY", "studyUID": study},
                         cookies={"iid_session": "a"}, follow_redirects=False)
        assert resp.status_code == status, resp.text
    _flush(bridge)
    iid = [e for e in _events(hapi, world.a.fhir_id)
           if e["source"]["observer"]["display"].endswith("(iid)")]
    outcomes = {(s, e["outcome"]) for e in iid for s in _studies(e)}
    assert outcomes == {(mine, "0"), (other, "4")}
    client = next(a for a in iid[0]["agent"] if a["type"]["coding"][0]["code"] == "110153")
    assert client["who"]["identifier"]["value"] == "smart-app"
