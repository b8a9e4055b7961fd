"""An oversized request body is refused without being read into memory (issue 12 item 5).

``POST /notifications`` read the whole body before its size and signature checks: one
400 MB unsigned body took the process from 214 MB to 990 MB.  Against a real
``imaging-bridge serve`` process, the bodies here are generated while they are sent (never
held by the test) and the server's peak resident set (``VmHWM``) must stay flat.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from bridge.realtime.signing import sign
from tests.integration.serve_helpers import ServeProcess, serve_config

SECRET = "body-limit-webhook-secret-0123456789"
MIB = 1 << 20
#: the whole notification body limit (bridge.realtime.notifications.MAX_BODY)
LIMIT = MIB
#: growth of the peak resident set the refusals may cause at most
FLAT_KIB = 40 * 1024


def _stream(total: int, chunk: int = MIB) -> Iterator[bytes]:
    """``total`` bytes, one reused chunk at a time: the test never holds the body."""
    block = b"x" * chunk
    for _ in range(total // chunk):
        yield block


def _signed_headers(body: bytes, *, now: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if now is None else now))
    return {"X-Bridge-Timestamp": ts, "X-Bridge-Signature": sign(SECRET.encode(), ts, body),
            "Content-Type": "application/json"}


def _forged_headers() -> dict[str, str]:
    """Fresh timestamp, well-formed but wrong signature: passes every check but the HMAC."""
    return {"X-Bridge-Timestamp": str(int(time.time())),
            "X-Bridge-Signature": "sha256=" + "0" * 64, "Content-Type": "application/json"}


def _post(url: str, total: int, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=300) as client:
        return client.post(url, content=_stream(total), headers=headers)


def _concurrently(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, httpx.Response) for r in results), results
    return results


def test_oversized_notification_bodies_are_refused_and_the_peak_rss_stays_flat(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    config = serve_config(orthanc_factory(), hapi, tmp_path, ns,
                          realtime={"webhook_secret": SECRET, "reconcile_interval": 0})
    with ServeProcess(config, tmp_path) as bridge:
        url = f"{bridge.url}/notifications"
        # warm the route up: everything it imports and allocates is in the baseline
        note = json.dumps({"studyInstanceUID": "1.2.3", "event": "updated"}).encode()
        assert httpx.post(url, content=note, headers=_signed_headers(note)).status_code == 202
        rss_before, hwm_before = bridge.memory_kib("VmRSS"), bridge.memory_kib("VmHWM")

        started = time.monotonic()
        unsigned = _post(url, 400 * MIB, {"Content-Type": "application/json"})
        declared = _post(url, 400 * MIB, {**_forged_headers(),
                                          "Content-Length": str(400 * MIB)})
        chunked = _post(url, 400 * MIB, _forged_headers())
        three = _concurrently([lambda: _post(url, 300 * MIB, _forged_headers())] * 3)
        elapsed = time.monotonic() - started

        rss_after, hwm_after = bridge.memory_kib("VmRSS"), bridge.memory_kib("VmHWM")
        # still serving: a correct notification is accepted after all that
        note2 = json.dumps({"studyInstanceUID": "1.2.4", "event": "updated"}).encode()
        assert httpx.post(url, content=note2, headers=_signed_headers(note2)).status_code == 202

    print(f"\nserve pid {bridge.pid}: VmRSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB,"
          f" VmHWM (peak) {hwm_before / 1024:.0f} -> {hwm_after / 1024:.0f} MiB after "
          f"refusing 400 MiB unsigned, 400 MiB declared, 400 MiB chunked and 3 x 300 MiB "
          f"concurrent bodies in {elapsed:.1f} s")
    # unsigned: refused on its headers, before a byte of the body is read
    assert unsigned.status_code == 401, unsigned.text
    for resp in (declared, chunked, *three):
        assert resp.status_code == 413, resp.text
        assert str(LIMIT) in resp.json()["detail"]
    assert hwm_after - hwm_before < FLAT_KIB, (hwm_before, hwm_after)
