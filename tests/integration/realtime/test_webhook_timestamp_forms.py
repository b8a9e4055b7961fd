"""A correctly signed notification whose timestamp is not whole unix seconds is refused by
the running service (issue 12 item 13): ``nan`` used to pass, never stale."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.integration.realtime.realtime_helpers import (
    WEBHOOK_SECRET,
    get_status,
    realtime_settings,
    signed,
)
from tests.support.servers import RunningBridge


def _signed_with(body: bytes, timestamp: str) -> dict[str, str]:
    sig = hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + body,
                   hashlib.sha256).hexdigest()
    return {"X-Bridge-Timestamp": timestamp, "X-Bridge-Signature": f"sha256={sig}",
            "Content-Type": "application/json"}


def test_signed_notifications_with_nan_inf_or_fractional_timestamps_are_refused(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    settings = realtime_settings(orthanc_factory(), hapi, tmp_path, ns)
    body = json.dumps({"studyInstanceUID": "1.2.3.4", "event": "updated"}).encode()
    with RunningBridge(settings) as bridge, httpx.Client(timeout=30) as client:
        url = f"{bridge.url}/notifications"
        for timestamp in ("nan", "NaN", "inf", "-inf", "1e10", f"{float(10**9):.1f}"):
            resp = client.post(url, content=body, headers=_signed_with(body, timestamp))
            assert resp.status_code == 401, (timestamp, resp.text)
            assert "whole unix seconds" in resp.json()["detail"]
        # the same body with a proper timestamp is accepted: only the timestamp's form failed
        assert client.post(url, content=body, headers=signed(body)).status_code == 202
        refused = get_status(bridge)["realtime"]["notifications"]["refused"]
    assert refused == {"signature": 6}
