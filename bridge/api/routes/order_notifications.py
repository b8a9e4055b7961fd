"""The EHR's order notifications (issue 17): the endpoint of a FHIR R4 rest-hook
Subscription on ServiceRequest (FHIR R4 Subscription, ``channel.type`` rest-hook).

A notification only makes the worklist poll at once (:meth:`WorklistService.notify`);
the poll reads what changed, so a lost, repeated or forged-but-authenticated notification
costs at most one ``_lastUpdated`` search.  The body is not read: R4 sends none with an
empty ``channel.payload``, or the resource (``PUT <endpoint>/ServiceRequest/<id>``) with
one.  The caller presents a credential of ``worklist.notification_auth`` (the
Subscription's ``channel.header``, e.g. ``Authorization: Bearer ...``); 401 otherwise,
503 while the worklist room is not running.
"""

from __future__ import annotations

import json
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bridge.auth.inbound import authenticate
from bridge.config import InboundAuthSettings

router = APIRouter(tags=["worklist"])


class _Notified(Protocol):
    notification_auth: InboundAuthSettings

    def notify(self) -> None: ...


def _answer(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps({"detail": detail}), status_code=status,
                    media_type="application/json", headers=headers)


def _notify(request: Request) -> Response:
    for room in getattr(request.app.state, "rooms", None) or ():
        if callable(getattr(room, "notify", None)):
            notified: _Notified = room
            if authenticate(request.headers.get("authorization"),
                            notified.notification_auth) is None:
                return _answer(401, "authentication required (worklist.notification_auth)",
                               {"WWW-Authenticate": 'Bearer realm="worklist"'})
            notified.notify()
            return Response(status_code=200)
    return _answer(503, "the worklist is not running")


@router.post("/worklist/notify")
async def order_notification(request: Request) -> Response:
    """A rest-hook notification without payload: poll the EHR's orders now."""
    return _notify(request)


@router.put("/worklist/notify/{resource_type}/{resource_id}")
async def order_notification_with_payload(resource_type: str, resource_id: str,
                                          request: Request) -> Response:
    """A rest-hook notification with the resource as payload: poll the EHR's orders now
    (the resource itself is not trusted, the poll reads it)."""
    return _notify(request)
