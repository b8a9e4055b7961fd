"""``POST /notifications``: signed study events pushed by archives.

Two body forms are accepted (a single object, or a JSON array of them):

* generic: ``{"studyInstanceUID": "1.2...", "event": "created|updated|deleted",
  "archive": "<name, optional>"}``
* Orthanc's change format (as in ``GET /changes``): ``{"ChangeType": "NewSeries",
  "ResourceType": "Series", "ID": "<orthanc id>", "Seq": 12}``, optionally with
  ``"StudyInstanceUID"`` (``docker/orthanc/notifier.lua`` adds it, sparing a lookup).

Every request must be signed (see :mod:`bridge.realtime.signing`): missing or stale signature
headers get 401 before a byte of the body is read; a body over :data:`MAX_BODY` gets 413
(its declared ``Content-Length`` is checked first, and the body is read in pieces that
stop at the limit, never whole: :func:`bridge.httpbody.read_body`); a wrong or replayed
signature gets 401 before the body is parsed; a malformed body gets 400.
Signatures used are remembered in the state store, so a replay is refused by every process
sharing it (503 with Retry-After when the store does not answer).  A valid request is
answered 202 at once and its events are processed right after (:func:`process_inbox`):
they only mark studies due.  Events for studies the archive does not have are recorded
(log, ``bridge_notifications_total{outcome="unknown-study"}``, ``RealtimeContext.recent``)
and ignored.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from bridge.errors import BridgeError, Permanent, RequestTooLarge
from bridge.httpbody import read_body
from bridge.realtime.context import RealtimeContext
from bridge.realtime.events import EventKind, handle_event
from bridge.realtime.metrics import NOTIFICATIONS_REFUSED
from bridge.realtime.orthanc_changes import resolve_change
from bridge.realtime.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ReplayedSignature,
    SignatureError,
    check_headers,
    verify_signature,
)
from bridge.state import StateUnavailable

log = logging.getLogger(__name__)
router = APIRouter()

ARCHIVE_HEADER = "X-Bridge-Archive"
#: a notification is a few hundred bytes; refuse anything absurd before hashing it
MAX_BODY = 1 << 20


def _rt(request: Request) -> RealtimeContext:
    rt: RealtimeContext = request.app.state.realtime
    return rt


Rt = Annotated[RealtimeContext, Depends(_rt)]


def _problem(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers or None)


class BadNotification(Permanent):
    """The body is not one of the documented forms; the message says what is wrong (400)."""

    kind = "bad-notification"
    http_status: int = 400


def _events(body: Any) -> list[dict[str, Any]]:
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(i, dict) for i in items):
        raise BadNotification("body must be a JSON object or a non-empty array of objects")
    for n, item in enumerate(items):
        if "studyInstanceUID" in item:
            if item.get("event") not in {e.value for e in EventKind}:
                raise BadNotification(
                    f"event {n}: 'event' must be one of created, updated, deleted")
            if not isinstance(item["studyInstanceUID"], str) or not item["studyInstanceUID"]:
                raise BadNotification(f"event {n}: studyInstanceUID must be a UID string")
        elif "ChangeType" not in item:
            raise BadNotification(
                f"event {n}: neither the generic form (studyInstanceUID, event) nor an "
                "Orthanc change (ChangeType, ResourceType, ID)")
    return items


def _refuse(rt: RealtimeContext, reason: str, status: int, message: str,
            **headers: str) -> JSONResponse:
    NOTIFICATIONS_REFUSED.labels(reason=reason).inc()
    rt.stats.notifications_refused[reason] += 1
    return _problem(status, message, **headers)


@router.post("/notifications", status_code=202)
async def notifications(request: Request, rt: Rt) -> JSONResponse:
    """Receive signed study events; 202 with the outcome of each."""
    secret = rt.settings.webhook_secret
    if secret is None:
        return _refuse(rt, "not-configured", 503,
                       "notifications are not configured (realtime.webhook_secret)")
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    try:
        # headers first: an unsigned or stale request costs no body read at all
        check_headers(timestamp=timestamp, signature=signature,
                      tolerance=rt.settings.signature_tolerance)
        body = await read_body(request, limit=MAX_BODY)
        # in a thread: the replay memory is in the state store (blocking I/O)
        await asyncio.to_thread(
            verify_signature,
            secret=secret.get_secret_value().encode(), body=body,
            timestamp=timestamp, signature=signature,
            tolerance=rt.settings.signature_tolerance, replays=rt.replays,
        )
    except RequestTooLarge as exc:
        log.warning("notification refused", extra={"error_type": exc.kind})
        return _refuse(rt, "too-large", exc.http_status, f"notification {exc.message}")
    except SignatureError as exc:
        reason = "replay" if isinstance(exc, ReplayedSignature) else "signature"
        log.warning("notification refused", extra={"error_type": reason, "detail": str(exc)})
        return _refuse(rt, reason, exc.http_status, f"notification signature refused: {exc}",
                       **{"WWW-Authenticate": 'HMAC-SHA256 realm="notifications"'})
    except StateUnavailable as exc:
        # authentic, but whether it is a replay cannot be told: refuse, the sender retries
        log.warning("notification refused", extra={"error_type": exc.kind})
        return _refuse(rt, exc.kind, 503, "the replay check is unavailable (state store); "
                       "retry later", **{"Retry-After": "5"})
    try:
        items = _events(json.loads(body))
    except (ValueError, BadNotification) as exc:
        return _refuse(rt, "body", 400, f"malformed notification: {exc}")
    archive = request.headers.get(ARCHIVE_HEADER)
    if rt.inbox.maxsize - rt.inbox.qsize() < len(items):
        return _refuse(rt, "busy", 503, "too many notifications waiting; retry later",
                       **{"Retry-After": "5"})
    for item in items:
        rt.inbox.put_nowait((item, archive))
    rt.stats.notifications_accepted += 1
    rt.stats.events_accepted += len(items)
    return JSONResponse({"accepted": len(items)}, status_code=202)


async def process_inbox(rt: RealtimeContext, stop: asyncio.Event) -> None:
    """Turn accepted notifications into due studies, until ``stop``.

    Done after the 202, never while the sender waits: an Orthanc Lua callback that posts
    to us holds Orthanc's Lua lock, and Orthanc takes that lock for every incoming HTTP
    request, so looking the study up in the archive while the sender waits would deadlock
    the two until a timeout.
    """
    while not stop.is_set():
        getter = asyncio.create_task(rt.inbox.get())
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if getter not in done:
            getter.cancel()
            return
        item, archive = getter.result()
        try:
            result = await _one(rt, item, archive)
        except BridgeError as exc:
            # e.g. an unknown archive name, or Orthanc down while resolving an id
            log.warning("notification not processed", extra={"error_type": exc.kind})
            result = {"event": item, "error": f"{exc.kind}: {exc.message}"}
        except Exception:
            log.exception("notification processing crashed")
            result = {"event": item, "error": "internal error"}
        rt.recent.append(result)


async def _one(rt: RealtimeContext, item: dict[str, Any], archive_name: str | None
               ) -> dict[str, Any]:
    archive = rt.archive(item.get("archive") or item.get("Archive") or archive_name).name
    if "studyInstanceUID" in item:
        uid, event, source = str(item["studyInstanceUID"]), EventKind(item["event"]), "webhook"
    else:
        change = await resolve_change(rt, rt.orthanc_api(archive), item)
        if change is None:
            return {"change": item.get("ChangeType"), "outcome": "ignored"}
        uid, event, source = change.study_uid, change.event, "orthanc-notifier"
    outcome = await handle_event(rt, archive=archive, study_uid=uid, event=event, source=source)
    return {"studyInstanceUID": uid, "event": event.value, "outcome": outcome.value}
