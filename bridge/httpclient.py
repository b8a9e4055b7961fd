"""The bridge's HTTP client: an ``httpx.AsyncClient`` that sends an idempotent request a
second time when it got no answer because a kept-alive connection was closed under it.

Why: a server may close an idle keep-alive connection at any moment (RFC 9112 9.6), and
a request written to it just then gets no answer at all (``RemoteProtocolError: Server
disconnected without sending a response``).  Orthanc closes idle connections after its
``KeepAliveTimeout``, 1 s by default, so a client that asks every second (the Orthanc
``/changes`` poller does) loses that race every few polls.  RFC 9110 9.2.2 lets a client
repeat an idempotent request automatically; GET, HEAD and OPTIONS are sent once more, on a
fresh connection (the closed one has left the pool).  Anything else (a FHIR batch, a STOW
upload) is not repeated: the caller's own retry policy decides.

A subclass rather than a transport wrapper: a client given a ``transport=`` no longer
applies ``HTTP(S)_PROXY`` / ``NO_PROXY`` from the environment, nor its ``limits=``, and a
hospital network may well need the proxy.
"""

from __future__ import annotations

from typing import Any

import httpx

#: RFC 9110 9.2.2: methods whose repetition has the same effect as one request
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


class _Cookies(httpx.Cookies):
    """A cookie jar that reads a response only when it sets a cookie.

    httpx hands every response to :meth:`http.cookiejar.CookieJar.extract_cookies`
    through two urllib adapters, about a tenth of the client's CPU per request; the jar
    reads nothing but ``Set-Cookie`` and ``Set-Cookie2`` (RFC 6265 5.2, RFC 2965), so a
    response without them is skipped and the jar ends up the same."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class HttpClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` that repeats an idempotent request once on
    :class:`httpx.RemoteProtocolError` (the server hung up without a complete answer)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cookies = _Cookies(self._cookies)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: httpx._types.CookieTypes) -> None:
        self._cookies = _Cookies(cookies)

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        try:
            return await super().send(request, **kwargs)
        except httpx.RemoteProtocolError:
            if request.method not in IDEMPOTENT:
                raise
            return await super().send(request, **kwargs)
