"""An httpx transport that sends over aiohttp (issue 19, "a quarter of today's CPU").

The bridge's clients are httpx clients (auth flows, timeouts, the idempotent repeat of
:mod:`bridge.httpclient`), but httpx's own transport (httpcore's pool and the pure-Python
h11 parser) costs about 2.3 ms of CPU per WADO-RS metadata request where aiohttp, with its
C parser and pool, costs about 0.6 ms (``tests/bench/bench_http_client.py``).  This
transport keeps the httpx client and replaces only what is below it: requests built and
responses read by httpx, bytes moved by aiohttp.

What httpx's own transport would do and this one does too:

* the connection limit (``limits``: aiohttp's connector ``limit``);
* ``HTTP(S)_PROXY`` / ``NO_PROXY`` from the environment (``trust_env``), which an httpx
  client stops reading once given a transport;
* timeouts: httpx passes its per-request timeouts in ``request.extensions``; connect,
  read (between chunks) and pool timeouts map to aiohttp's ``ClientTimeout``;
* errors: a refused or failed connection is ``httpx.ConnectError``, a server that hangs
  up without a complete answer ``httpx.RemoteProtocolError``, a timeout the matching
  ``httpx.*Timeout``, so the clients' classification (outage, repeat) is unchanged.

Response bodies are streamed: the caller's ``aread``/``aiter_bytes`` read from aiohttp's
stream, and closing the httpx response releases the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx

__all__ = ["AiohttpTransport"]

#: bytes per read from aiohttp's stream
_CHUNK = 64 * 1024


class _Body(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx stream; closing it releases the connection."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "read timed out") from exc
        except aiohttp.ClientPayloadError as exc:
            raise httpx.RemoteProtocolError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc)) from exc

    async def aclose(self) -> None:
        self._response.release()


def _timeout(extensions: dict[str, Any]) -> aiohttp.ClientTimeout:
    t = extensions.get("timeout") or {}
    return aiohttp.ClientTimeout(total=None, connect=t.get("pool"),
                                 sock_connect=t.get("connect"), sock_read=t.get("read"))


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Send an httpx client's requests with one aiohttp session (created on first use, in
    the running event loop; closed by :meth:`aclose`, which the httpx client calls)."""

    def __init__(self, *, max_connections: int | None = None, trust_env: bool = True) -> None:
        self._limit = max_connections or 0  # aiohttp: 0 = no limit
        self._trust_env = trust_env
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, limit_per_host=0),
                trust_env=self._trust_env,
                # httpx decides about redirects, cookies and decoding; aiohttp moves bytes
                auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept",
                                   "Content-Type"))
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        data: Any
        try:
            data = request.content or None  # a body given whole (bytes, JSON, a form)
        except httpx.RequestNotRead:
            data = _aiter(request.stream)  # a streamed body (a STOW upload): sent as read
        try:
            response = await session.request(
                request.method, str(request.url), headers=request.headers.multi_items(),
                data=data, allow_redirects=False,
                timeout=_timeout(request.extensions), compress=None, chunked=None)
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc) or "connect timed out",
                                       request=request) from exc
        except TimeoutError as exc:  # no answer within the read timeout
            raise httpx.ReadTimeout(str(exc) or "read timed out", request=request) from exc
        except aiohttp.ServerDisconnectedError as exc:
            raise httpx.RemoteProtocolError(str(exc) or "server disconnected",
                                            request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc), request=request) from exc
        return httpx.Response(
            response.status, headers=[(k, v) for k, v in response.raw_headers],
            stream=_Body(response), request=request,
            extensions={"http_version": b"HTTP/1.1",
                        "reason_phrase": (response.reason or "").encode()})

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _aiter(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk
