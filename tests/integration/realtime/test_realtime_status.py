"""``GET /status`` reports what the real-time sources did, without any patient data."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.integration.realtime.realtime_helpers import (
    STOW_TOKEN,
    WEBHOOK_SECRET,
    bearer,
    get_status,
    make_studies,
    realtime_settings,
    series_instances,
    signed,
    stow_body,
)
from tests.support.servers import RunningBridge
from tests.support.waits import wait_until


def test_status_reports_notifications_stow_changes_feed_and_reconciliation(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    server = orthanc_factory()  # its own: the changes feed and reconciliation see only ours
    study = make_studies(hapi, ns)[0]
    archive = f"orthanc-{ns.token}"
    settings = realtime_settings(server, hapi, tmp_path, ns, realtime={
        "orthanc_changes": {"archive": archive, "url": server.base_url, "interval": 0.2},
        "reconcile_interval": 1.0, "reconcile_window_days": 0})
    with RunningBridge(settings) as bridge, httpx.Client(timeout=60) as client:
        def realtime() -> dict[str, Any]:
            section: dict[str, Any] = get_status(bridge)["realtime"]
            return section

        before = wait_until(lambda: (s := realtime())["orthanc_changes"]["last_poll"] and s,
                          what="first poll of the changes feed")
        assert before["sources"] == {"notifications": True, "stow_proxy": True,
                                     "orthanc_changes": True}
        assert before["notifications"] == {
            "accepted_requests": 0, "accepted_events": 0, "refused": {}, "inbox_depth": 0,
            "inbox_capacity": 10_000, "recent_outcomes": {}}
        assert before["stow_proxy"] == {"enabled": True, "archive": archive,
                                        "requests_by_status": {}, "uploads_stored": 0,
                                        "studies_queued": 0}
        changes = before["orthanc_changes"]
        assert changes["archive"] == archive and changes["running"] is True
        assert changes["last_error"] is None and isinstance(changes["cursor"], int)

        body, ctype = stow_body(series_instances(study, series=1, per_series=2))
        stored = client.post(f"{bridge.url}/dicom-web/studies", content=body,
                             headers={**bearer(), "Content-Type": ctype})
        assert stored.status_code == 200, stored.text
        unauthenticated = client.post(f"{bridge.url}/dicom-web/studies", content=body,
                                      headers={"Content-Type": ctype})
        assert unauthenticated.status_code == 401
        note = json.dumps({"studyInstanceUID": study.study_uid, "event": "updated"}).encode()
        headers = signed(note)
        url = f"{bridge.url}/notifications"
        assert client.post(url, content=note, headers=headers).status_code == 202
        assert client.post(url, content=note, headers=headers).status_code == 401
        assert client.post(url, content=note, headers=signed(note, secret="x" * 32)
                           ).status_code == 401

        after = wait_until(
            lambda: (s := realtime())["notifications"]["recent_outcomes"].get("queued")
            and s["orthanc_changes"]["cursor"] > changes["cursor"] and s["last_reconcile"]
            and s, what="notification processed, changes read, a reconciliation done")
        status_text = get_status(bridge)

    assert after["notifications"] == {
        "accepted_requests": 1, "accepted_events": 1,
        "refused": {"replay": 1, "signature": 1}, "inbox_depth": 0, "inbox_capacity": 10_000,
        "recent_outcomes": {"queued": 1}}
    assert after["stow_proxy"]["requests_by_status"] == {"200": 1, "401": 1}
    assert after["stow_proxy"]["uploads_stored"] == 1
    assert after["stow_proxy"]["studies_queued"] == 1
    assert after["coalescer"]["immediate"] >= 1
    assert after["orthanc_changes"]["changes_seen"] > 0
    reconciled = after["last_reconcile"]
    assert reconciled["at"] and reconciled["error"] is None
    assert [r["archive"] for r in reconciled["archives"]] == [archive]
    # counts and types only: no patient, study, token or secret in the answer
    text = json.dumps(status_text)
    truth = study.truth
    for private in (truth.patient_id, truth.patient_name, truth.accession_number,
                    study.study_uid, STOW_TOKEN, WEBHOOK_SECRET, server.password):
        assert private not in text
