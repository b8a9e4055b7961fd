"""Signed notifications and the delete policy against the real Orthanc and HAPI (issue 5)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.state.enums import Status
from tests.integration.realtime.realtime_helpers import (
    imaging_study,
    make_studies,
    outcome_of,
    post_signed,
    realtime_settings,
    series_instances,
    signed,
    store_in_orthanc,
    study_counts,
)
from tests.support.servers import RunningBridge
from tests.support.waits import wait_until


def test_webhook_accepts_signed_requests_and_refuses_unsigned_wrong_stale_and_replayed(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    study = make_studies(hapi, ns)[0]
    store_in_orthanc(orthanc, series_instances(study, series=1, per_series=2))
    settings = realtime_settings(orthanc, hapi, tmp_path, ns)
    payload = {"studyInstanceUID": study.study_uid, "event": "created"}
    body = json.dumps(payload).encode()
    with RunningBridge(settings) as bridge, httpx.Client(timeout=30) as client:
        url = f"{bridge.url}/notifications"
        unsigned = client.post(url, content=body, headers={"Content-Type": "application/json"})
        assert unsigned.status_code == 401 and "missing header" in unsigned.json()["detail"]
        wrong = client.post(url, content=body, headers=signed(body, secret="x" * 32))
        assert wrong.status_code == 401 and "does not match" in wrong.json()["detail"]
        stale = client.post(url, content=body, headers=signed(body, timestamp=time.time() - 3600))
        assert stale.status_code == 401 and "off" in stale.json()["detail"]
        tampered_headers = signed(body)
        tampered = client.post(url, content=body.replace(b"created", b"deleted"),
                               headers=tampered_headers)
        assert tampered.status_code == 401
        assert imaging_study(hapi, study.study_uid) is None  # nothing refused was acted on

        headers = signed(body)
        ok = client.post(url, content=body, headers=headers)
        assert ok.status_code == 202, ok.text
        assert ok.json() == {"accepted": 1}
        assert outcome_of(bridge, study.study_uid)["outcome"] == "queued"
        replay = client.post(url, content=body, headers=headers)
        assert replay.status_code == 401 and "replayed" in replay.json()["detail"]
        assert wait_until(lambda: study_counts(hapi, study.study_uid) == (1, 2),
                        what="ImagingStudy from the signed notification")

        stranger = ns.uid()
        unknown = post_signed(bridge, {"studyInstanceUID": stranger, "event": "updated"})
        assert unknown.status_code == 202
        assert outcome_of(bridge, stranger)["outcome"] == "unknown-study"
        assert bridge.realtime.sync.store.get_study(settings.archives[0].name, stranger) is None
        bad = post_signed(bridge, {"studyInstanceUID": study.study_uid, "event": "moved"})
        assert bad.status_code == 400 and "event" in bad.json()["detail"]


def test_orthanc_change_format_is_resolved_to_the_study(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    study = make_studies(hapi, ns)[0]
    datasets = series_instances(study, series=1, per_series=1)
    store_in_orthanc(orthanc, datasets)
    with httpx.Client(auth=orthanc.auth) as client:
        series_id = client.post(f"{orthanc.base_url}/tools/lookup",
                                content=str(datasets[0].SeriesInstanceUID)).json()[0]["ID"]
    settings = realtime_settings(orthanc, hapi, tmp_path, ns)
    with RunningBridge(settings) as bridge:
        resp = post_signed(bridge, {"ChangeType": "NewSeries", "ResourceType": "Series",
                                    "ID": series_id, "Seq": 1})
        assert resp.status_code == 202, resp.text
        assert outcome_of(bridge, study.study_uid) == {"studyInstanceUID": study.study_uid,
                                                       "event": "updated", "outcome": "queued"}
        assert wait_until(lambda: imaging_study(hapi, study.study_uid), what="ImagingStudy")


@pytest.mark.parametrize("policy", ["delete", "entered-in-error", "keep"])
def test_study_deleted_in_orthanc_gets_the_configured_policy(
    policy: str, orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    study = make_studies(hapi, ns)[0]
    orthanc_id = store_in_orthanc(orthanc, series_instances(study, series=1, per_series=1))
    settings = realtime_settings(orthanc, hapi, tmp_path, ns,
                                 realtime={"delete_policy": policy})
    with RunningBridge(settings) as bridge:
        post_signed(bridge, {"studyInstanceUID": study.study_uid, "event": "created"})
        before = wait_until(lambda: imaging_study(hapi, study.study_uid), what="ImagingStudy")
        # let the follow-up sync (quiet period) pass so it does not race the delete
        time.sleep(settings.realtime.quiet_period + 0.5)
        with httpx.Client(auth=orthanc.auth) as client:
            assert client.delete(f"{orthanc.base_url}/studies/{orthanc_id}").status_code == 200
        resp = post_signed(bridge, {"studyInstanceUID": study.study_uid, "event": "deleted"})
        assert resp.status_code == 202
        assert outcome_of(bridge, study.study_uid, event="deleted")["outcome"] == "queued"
        store = bridge.realtime.sync.store
        archive = settings.archives[0].name
        expected = Status.FAILED if policy == "keep" else Status.DELETED
        view = wait_until(lambda: (v := store.get_study(archive, study.study_uid))
                        and v.status is expected and v, what=f"study {expected}")
    after = imaging_study(hapi, study.study_uid)
    if policy == "delete":
        assert after is None
        with httpx.Client() as client:
            gone = client.get(f"{hapi.fhir_url}/ImagingStudy/{before['id']}")
        assert gone.status_code == 410
    elif policy == "entered-in-error":
        assert after is not None and after["id"] == before["id"]
        assert after["status"] == "entered-in-error"
    else:
        assert after is not None and after["status"] == before["status"]
        assert view.last_error_kind == "study-gone" and "policy keep" in (view.last_error or "")
    history = store.study_history(study.study_uid)
    actions = [getattr(h, "action", None) for h in history]
    if policy != "keep":
        assert ("delete" if policy == "delete" else "mark-entered-in-error") in actions
