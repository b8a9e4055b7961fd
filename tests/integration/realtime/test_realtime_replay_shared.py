"""Replay protection shared by bridge processes behind a load balancer (one PostgreSQL store).

Two apps (each its own RealtimeContext, engine and connection pool, as two ``imaging-bridge
serve`` processes would have) on one PostgreSQL state store: a signed notification accepted
by one is refused as a replay by the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.integration.realtime.realtime_helpers import (
    get_status,
    outcome_of,
    realtime_settings,
    signed,
)
from tests.support.servers import RunningBridge


def test_a_notification_accepted_by_one_process_is_refused_as_a_replay_by_another(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path, pg_schema_url: str
) -> None:
    settings = realtime_settings(orthanc, hapi, tmp_path, ns, state_url=pg_schema_url)
    first, second = ns.uid(), ns.uid()  # studies the archive does not have: nothing to sync
    body_a = json.dumps({"studyInstanceUID": first, "event": "updated"}).encode()
    body_b = json.dumps({"studyInstanceUID": second, "event": "updated"}).encode()
    with RunningBridge(settings) as a, RunningBridge(settings) as b, \
            httpx.Client(timeout=30) as client:
        assert a.realtime.sync.store.dialect == "postgresql"
        assert a.realtime.replays is not b.realtime.replays
        captured = signed(body_a)
        accepted = client.post(f"{a.url}/notifications", content=body_a, headers=captured)
        assert accepted.status_code == 202, accepted.text
        replayed = client.post(f"{b.url}/notifications", content=body_a, headers=captured)
        assert replayed.status_code == 401
        assert "replayed request" in replayed.json()["detail"]
        assert replayed.headers["WWW-Authenticate"].startswith("HMAC-SHA256")
        # and the other way round: B accepts its own, A refuses it
        headers_b = signed(body_b)
        assert client.post(f"{b.url}/notifications", content=body_b,
                           headers=headers_b).status_code == 202
        back = client.post(f"{a.url}/notifications", content=body_b, headers=headers_b)
        assert back.status_code == 401 and "replayed" in back.json()["detail"]
        # each event was processed once, by the process that accepted it
        assert outcome_of(a, first)["outcome"] == "unknown-study"
        assert outcome_of(b, second)["outcome"] == "unknown-study"
        assert [i for i in a.realtime.recent if i.get("studyInstanceUID") == second] == []
        status_a, status_b = get_status(a), get_status(b)
    for status in (status_a, status_b):
        notifications = status["realtime"]["notifications"]
        assert notifications["accepted_requests"] == 1
        assert notifications["refused"] == {"replay": 1}
