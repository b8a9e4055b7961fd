"""The SMART app's access decisions, observed from outside the app (issue 20 items 9, 10).

An ASGI middleware watches the app's routes and records each decision as its answer
starts (one session read, the app's own, before the status line leaves):

=====================  ===============  ===================================================
route                  action           who / patient / studies
=====================  ===============  ===================================================
GET /smart/launch      (metrics only)   ``bridge_smart_launches_total{step="start"}``
GET /smart/callback    launch           the session the callback opened (its Set-Cookie)
GET /app/history       history          the browser's session
GET /app/viewer        viewer-open      the session; StudyInstanceUIDs of the redirect
GET /app/study/{id}    viewer-open      the session; StudyInstanceUIDs of the redirect
=====================  ===============  ===================================================

Outcome: permitted for 2xx/3xx, refused for 4xx (reason from the status: bad-request,
not-signed-in, access-denied, not-found, rate-limited), failed for 5xx.  The session is
read through the app's own ``app.state.smart.session_of`` (the ``fhirUser`` and patient go
to the AuditEvent only); the viewer token in the redirect is never read or kept.
"""

from __future__ import annotations

import hashlib
import logging
import time
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.audit.record import Action, Actor, AuditRecord, Outcome, session_ref
from bridge.audit.trail import AuditTrail
from bridge.metrics import SMART_LAUNCHES

log = logging.getLogger(__name__)

_REASONS = {400: "bad-request", 401: "not-signed-in", 403: "access-denied",
            404: "not-found", 429: "rate-limited"}


def _action(method: str, path: str) -> Action | str | None:
    if method != "GET":
        return None
    if path == "/smart/launch":
        return "start"
    if path == "/smart/callback":
        return Action.LAUNCH
    if path == "/app/history":
        return Action.HISTORY
    if path == "/app/viewer" or path.startswith("/app/study/"):
        return Action.VIEWER
    return None


def reason_of(status: int) -> str | None:
    if status < 400:
        return None
    return _REASONS.get(status, "failed" if status >= 500 else "refused")


def _outcome(status: int) -> Outcome:
    if status < 400:
        return Outcome.PERMITTED
    return Outcome.REFUSED if status < 500 else Outcome.FAILED


class SmartAccessObserver:
    """ASGI middleware: SMART app decisions to the audit trail and the launch metrics."""

    def __init__(self, app: ASGIApp, *, trail: AuditTrail, client_id: str | None) -> None:
        self.app = app
        self.trail = trail
        self.client_id = client_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        action = _action(scope.get("method", ""), scope.get("path", "")) \
            if scope["type"] == "http" else None
        if action is None:
            await self.app(scope, receive, send)
            return
        recorded = False

        async def observed(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                # recorded before the answer leaves: whoever sees the page, the trail has it
                recorded = True
                await self._decided(scope, action, message["status"],
                                    MutableHeaders(raw=list(message.get("headers", []))))
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            if not recorded:  # the app failed before answering
                await self._decided(scope, action, 500, None)

    async def _decided(self, scope: Scope, action: Action | str, status: int,
                       headers: MutableHeaders | None) -> None:
        outcome = _outcome(status)
        reason = reason_of(status) or "ok"
        if action == "start":
            SMART_LAUNCHES.labels(step="start", outcome=outcome.value, reason=reason).inc()
            return
        assert isinstance(action, Action)
        if action is Action.LAUNCH:
            SMART_LAUNCHES.labels(step="callback", outcome=outcome.value, reason=reason).inc()
        await self._record(scope, action, status, headers)

    async def _record(self, scope: Scope, action: Action, status: int,
                      headers: MutableHeaders | None) -> None:
        started = time.perf_counter()
        request = Request(scope)
        data: dict[str, Any] = {}
        try:
            data = await self._session_data(request, action, headers)
            session = data.pop("_session_ref", None)
        except Exception:  # the page was answered; a failed look-up only thins the record
            log.warning("audit: the SMART session could not be read",
                        extra={"action": action.value})
            session = None
        studies: tuple[str, ...] = ()
        location = headers.get("location") if headers is not None else None
        if action is Action.VIEWER and location:
            raw = parse_qs(urlsplit(location).query).get("StudyInstanceUIDs", [""])[0]
            studies = tuple(u for u in raw.split(",") if u)
        elif action is Action.VIEWER:
            raw = request.query_params.get("StudyInstanceUIDs", "")
            studies = tuple(u for u in raw.split(",") if u and len(u) <= 64)
        self.trail.record(AuditRecord(
            source="smart-app", action=action, outcome=_outcome(status), status=status,
            actor=Actor(kind="session", client_id=self.client_id,
                        user=_str(data.get("fhir_user")),
                        address=request.client.host if request.client else None,
                        session=session),
            patient=_str(data.get("patient")), studies=studies, reason=reason_of(status)))
        log.debug("audit: smart decision recorded",
                  extra={"seconds": round(time.perf_counter() - started, 4)})

    async def _session_data(self, request: Request, action: Action,
                            headers: MutableHeaders | None) -> dict[str, Any]:
        smart = getattr(request.app.state, "smart", None)
        if smart is None:
            return {}
        if action is Action.LAUNCH and headers is not None:
            # the callback's session is the one its answer sets (a new cookie)
            jar: SimpleCookie = SimpleCookie()
            for value in headers.getlist("set-cookie"):
                jar.load(value)
            cookies = "; ".join(f"{k}={m.value}" for k, m in jar.items() if m.value)
            if not cookies:
                return {}
            scope = dict(request.scope)
            scope["headers"] = [(k, v) for k, v in request.scope["headers"]
                                if k != b"cookie"] + [(b"cookie", cookies.encode("latin-1"))]
            request = Request(scope)
        session = await smart.session_of(request)
        if session is None:
            return {}
        data: dict[str, Any] = dict(session.data)
        cookie = getattr(session, "cookie", None)
        if isinstance(cookie, str):  # the session's key (a viewer token's sid) is its SHA-256
            data["_session_ref"] = session_ref(hashlib.sha256(cookie.encode()).hexdigest())
        return data


def _str(value: object) -> str | None:
    return str(value) if value else None
