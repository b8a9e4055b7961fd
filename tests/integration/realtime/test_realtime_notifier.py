"""docker/orthanc/notifier.lua in a real Orthanc, posting signed events to the bridge."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bridge.state.enums import Status
from tests.integration.realtime.realtime_helpers import (
    WEBHOOK_SECRET,
    imaging_study,
    make_studies,
    realtime_settings,
    series_instances,
    store_in_orthanc,
    study_counts,
)
from tests.integration.sync_helpers import REPO_ROOT
from tests.support.ports import free_port
from tests.support.servers import RunningBridge
from tests.support.waits import wait_until

NOTIFIER = REPO_ROOT / "docker" / "orthanc" / "notifier.lua"


def _orthanc_with_notifier(factory: Callable[..., Any], bridge_port: int, archive: str) -> Any:
    return factory(notify_lua_script=NOTIFIER, extra_config={
        "ImagingBridge": {"Url": f"http://127.0.0.1:{bridge_port}/notifications",
                          "Secret": WEBHOOK_SECRET, "Archive": archive, "Timeout": 5},
        "ExecuteLuaEnabled": True,  # lets the test run the script's HMAC directly
    })


def test_lua_hmac_sha256_matches_python(orthanc_factory: Callable[..., Any]) -> None:
    server = _orthanc_with_notifier(orthanc_factory, free_port(), "x")
    cases = [("key", ""), ("key", "The quick brown fox jumps over the lazy dog"),
             (WEBHOOK_SECRET, "1700000000." + '{"studyInstanceUID":"1.2.3","event":"created"}'),
             ("k" * 100, "x" * 1000), ("secret", "a" * 55), ("secret", "a" * 56),
             ("secret", "a" * 64)]
    with httpx.Client(auth=server.auth, timeout=30) as client:
        for key, msg in cases:
            script = f"print(BridgeHmacHex({_lua(key)}, {_lua(msg)}))"
            resp = client.post(f"{server.base_url}/tools/execute-script", content=script)
            assert resp.status_code == 200, resp.text
            expected = hmac.new(key.encode(), msg.encode(), hashlib.sha256).hexdigest()
            assert resp.text.strip() == expected, (key[:10], len(msg))


def _lua(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_notifier_in_orthanc_gets_studies_synced_and_deletes_applied(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    port = free_port()
    archive = f"orthanc-{ns.token}"
    server = _orthanc_with_notifier(orthanc_factory, port, archive)
    settings = realtime_settings(server, hapi, tmp_path, ns,
                                 realtime={"delete_policy": "entered-in-error"})
    study = make_studies(hapi, ns)[0]
    with RunningBridge(settings, port=port) as bridge:
        started = time.monotonic()
        orthanc_id = store_in_orthanc(server, series_instances(study, series=2, per_series=2))
        wait_until(lambda: imaging_study(hapi, study.study_uid), what="ImagingStudy via notifier")
        appeared = time.monotonic() - started
        # final counts after the follow-up / stable-study event
        assert wait_until(lambda: study_counts(hapi, study.study_uid) == (2, 4), timeout=30,
                        what="final counts")
        assert appeared < 10, appeared

        time.sleep(settings.realtime.quiet_period + 0.5)
        with httpx.Client(auth=server.auth) as client:
            assert client.delete(f"{server.base_url}/studies/{orthanc_id}").status_code == 200
        store = bridge.realtime.sync.store
        wait_until(lambda: (v := store.get_study(archive, study.study_uid))
                 and v.status is Status.DELETED, what="study deleted via notifier")
    found = imaging_study(hapi, study.study_uid)
    assert found is not None and found["status"] == "entered-in-error"
