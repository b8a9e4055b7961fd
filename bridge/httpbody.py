"""Bounded request bodies: nothing is read past a hard cap (issue 12 item 5).

A request body is only ever read in pieces, counted as they arrive; the declared
``Content-Length`` (RFC 9110 8.6) is checked first, so an announced oversized body is
refused before a byte of it is read, and a chunked one (RFC 9112 7.1) as soon as the count
passes the cap.  Either way the answer is 413 naming the limit (RFC 9110 15.5.14).  The
unread rest is the server's to discard (uvicorn drops data that arrives after the
response), never buffered.

Two layers:

* :func:`read_body`, for a route that needs its whole (small) body, e.g.
  ``POST /notifications``;
* :class:`BodyLimit`, ASGI middleware capping every other request's body, whatever the
  route does with it (``request.form()``, a declared body model): the SMART app's
  ``POST /app/logout`` and any route added later.  Routes that bound their bodies
  themselves (the STOW-RS proxy, which forwards as it reads; ``/notifications``) are
  exempted by the app factory.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bridge.errors import RequestTooLarge

#: the cap of every body read whole: forms, JSON documents, notifications (1 MiB)
MAX_BODY = 1 << 20


def declared_length(value: str | None) -> int | None:
    """The ``Content-Length`` as an int, ``None`` when absent or not a plain number (the
    server's HTTP parser has refused malformed ones already; streaming counts anyway)."""
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


async def read_body(request: Request, *, limit: int = MAX_BODY) -> bytes:
    """The whole body, at most ``limit`` bytes; :class:`RequestTooLarge` otherwise.

    Memory used is bounded by ``limit`` plus one received chunk whatever the client sends.
    """
    declared = declared_length(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise RequestTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise RequestTooLarge(limit)
    return bytes(body)


class _Overflow(HTTPException):
    """Raised from ``receive`` when the body passes the cap.

    An :class:`HTTPException`, so the route's own error handling (FastAPI re-raises it while
    parsing a declared body; Starlette's exception middleware renders it) answers 413;
    :class:`BodyLimit` catches what still escapes.
    """

    def __init__(self, error: RequestTooLarge) -> None:
        super().__init__(status_code=error.http_status, detail=error.message)


def too_large_response(error: RequestTooLarge) -> JSONResponse:
    return JSONResponse({"detail": error.message}, status_code=error.http_status)


class BodyLimit:
    """ASGI middleware: no request body past ``limit`` bytes, except where ``exempt``."""

    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY,
                 exempt: Callable[[str, str], bool] = lambda method, path: False) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        error = RequestTooLarge(self.limit)
        headers = dict(scope["headers"])
        declared = declared_length(headers.get(b"content-length", b"").decode("latin-1")
                                   or None)
        if declared is not None and declared > self.limit:
            await too_large_response(error)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _Overflow(error)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _Overflow:
            if started:
                raise
            await too_large_response(error)(scope, receive, send)
