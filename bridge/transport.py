"""The HTTP transport of the bridge's httpx clients: a connection pool that sends an
idempotent request a second time when a kept-alive connection was closed under it.

Why: a server may close an idle keep-alive connection at any moment (RFC 9112 9.6), and
a request written to it just then gets no answer at all (``RemoteProtocolError: Server
disconnected without sending a response``).  Orthanc closes idle connections after its
``KeepAliveTimeout``, 1 s by default, so a client that asks every second (the Orthanc
``/changes`` poller does) loses that race every few polls.  RFC 9110 9.2.2 lets a client
repeat an idempotent request automatically; GET, HEAD and OPTIONS are sent once more,
on a fresh connection (the closed one has left the pool).  Anything else (a FHIR batch, a
STOW upload) is not repeated: the caller's own retry policy decides.

Only a failure before any response is repeated: once the status line arrived the
transport has returned, so a body that breaks off is the caller's error, as before.
"""

from __future__ import annotations

import httpx

#: RFC 9110 9.2.2: methods whose repetition has the same effect as one request
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class ResendIdempotent(httpx.AsyncBaseTransport):
    """Wraps a transport: an idempotent request that got no response is sent once more."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._inner.handle_async_request(request)
        except httpx.RemoteProtocolError:
            if request.method not in IDEMPOTENT:
                raise
            return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def pooled(*, max_connections: int | None = None,
           transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
    """The transport for a client of the bridge: ``transport`` (a test's) or a pool of
    ``max_connections``, wrapped in :class:`ResendIdempotent`.  Pass it as the client's
    ``transport=`` (httpx ignores the client's ``limits=`` once a transport is given)."""
    inner = transport or httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=max_connections))
    return ResendIdempotent(inner)
