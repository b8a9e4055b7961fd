"""Metrics and audit records of gateway and IID requests (issue 20 items 9 and 10).

Each ``/dicom-web`` GET and ``/IHEInvokeImageDisplay`` request is one :class:`Seen`: when
it is answered, its route kind and status are counted, its latency observed (to the last
byte of a streamed answer) and its bytes counted as they are sent, and its access decision
is handed to the audit trail (:mod:`bridge.audit`): permitted when the answer is a success
or a redirect, refused for a 4xx (the reason is the error's kind, e.g. ``forbidden``),
failed for a 5xx (the archive or the EHR could not answer).  Recording never waits
(:meth:`bridge.audit.AuditTrail.record`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from bridge.audit import Action, Actor, AuditRecord, AuditTrail, Outcome, session_ref
from bridge.errors import BridgeError
from bridge.gateway import paths
from bridge.gateway.errors import BadRequest
from bridge.gateway.paths import Target
from bridge.gateway.tokens import TokenInfo
from bridge.metrics import GATEWAY_BYTES, GATEWAY_LATENCY, GATEWAY_REQUESTS

_ROOT_SEGMENTS = ("studies", "series", "instances")


def kind_of(target: Target | None) -> str:
    """The route kind of a parsed path: qido, retrieve, metadata, frames, rendered,
    thumbnail, bulk (invalid when the path did not parse)."""
    if target is None:
        return "invalid"
    if target.qido_level is not None:
        return "qido"
    if not target.tail:
        return "retrieve"
    first = target.tail.split("/", 1)[0]
    return "rendered" if target.tail.endswith("/rendered") else first


def target_of(request: Request) -> Target | None:
    """The parsed ``/dicom-web[/{archive}]/...`` path of a request, None when malformed."""
    parts = request.url.path.split("/dicom-web/", 1)
    rest = parts[1] if len(parts) == 2 else ""
    if rest.split("/", 1)[0] not in _ROOT_SEGMENTS:
        rest = rest.split("/", 1)[1] if "/" in rest else ""
    try:
        return paths.parse(rest)
    except BadRequest:
        return None


def actor_of(token: TokenInfo | None, request: Request) -> Actor:
    address = request.client.host if request.client else None
    if token is None:
        return Actor(kind="anonymous", address=address)
    return Actor(kind=token.kind, client_id=token.client_id, address=address,
                 session=session_ref(token.session) if token.session else None)


class Seen:
    """One request: its metrics and its access decision."""

    def __init__(self, trail: AuditTrail | None, request: Request, *, source: str = "gateway",
                 token: TokenInfo | None = None, target: Target | None = None,
                 archive: str | None = None, kind: str | None = None) -> None:
        self.trail = trail
        self.request = request
        self.source = source
        self.token = token
        self.target = target
        self.archive = archive
        self.kind = kind
        self.studies: tuple[str, ...] | None = None
        self.started = time.perf_counter()

    def _kind(self) -> str:
        return self.kind or kind_of(self.target)

    def _action(self) -> Action:
        if self.source == "iid":
            return Action.INVOKE
        if self.target is not None and self.target.qido_level is not None:
            return Action.QUERY
        return Action.READ

    def _audit(self, outcome: Outcome, status: int, exc: BridgeError | None) -> None:
        if self.trail is None:
            return
        target = self.target
        studies = self.studies
        if studies is None:
            studies = (target.study,) if target is not None and target.study else ()
        query = None
        if self._action() is Action.QUERY:
            query = self.request.url.path
            if self.request.url.query:
                query += "?" + self.request.url.query
        self.trail.record(AuditRecord(
            source=self.source, action=self._action(), outcome=outcome,
            actor=actor_of(self.token, self.request), status=status,
            patient=self.token.patient if self.token is not None else None,
            studies=studies, archive=self.archive,
            reason=exc.kind if exc is not None else None,
            detail=exc.message if exc is not None else None, query=query))

    def refused(self, exc: BridgeError, status: int) -> None:
        """The request was answered ``status`` (>= 400) because of ``exc``."""
        kind = self._kind()
        GATEWAY_REQUESTS.labels(kind=kind, status=str(status)).inc()
        GATEWAY_LATENCY.labels(kind=kind).observe(time.perf_counter() - self.started)
        self._audit(Outcome.REFUSED if status < 500 else Outcome.FAILED, status, exc)

    def permitted(self, response: Response) -> Response:
        """The request is answered with ``response``; a streamed body is counted as sent."""
        self._audit(Outcome.PERMITTED, response.status_code, None)
        kind = self._kind()
        GATEWAY_REQUESTS.labels(kind=kind, status=str(response.status_code)).inc()
        if isinstance(response, StreamingResponse):
            response.body_iterator = self._counted(response.body_iterator, kind)
        else:
            GATEWAY_BYTES.labels(kind=kind).inc(len(response.body))
            GATEWAY_LATENCY.labels(kind=kind).observe(time.perf_counter() - self.started)
        return response

    async def _counted(self, body: AsyncIterable[str | bytes | memoryview], kind: str
                       ) -> AsyncIterator[str | bytes | memoryview]:
        sent = 0
        try:
            async for chunk in body:
                sent += len(chunk)
                yield chunk
        finally:
            GATEWAY_BYTES.labels(kind=kind).inc(sent)
            GATEWAY_LATENCY.labels(kind=kind).observe(time.perf_counter() - self.started)
