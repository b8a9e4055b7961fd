"""Streaming pass-through to the archive's DICOMweb API (PS3.18 10.4 WADO-RS, 10.6 QIDO-RS).

Responses are streamed chunk by chunk (aiohttp -> Starlette ``StreamingResponse``), never
buffered whole, so a 1 GB study passes in bounded memory.  The client's Accept (media type
and ``transfer-syntax`` parameter, PS3.18 8.7) is passed through untouched, as are the
archive's Content-Type and multipart boundaries: the bytes the client receives are the
archive's.  The gateway adds the archive's credentials (:class:`AuthorizationHeader`); the
client's Authorization and cookies are never forwarded, and hop-by-hop headers (RFC 9110
7.6.1) and the archive's authentication challenges are dropped from the answer.

JSON answers (QIDO results, WADO-RS metadata) name the archive in RetrieveURL (0008,1190)
and BulkDataURI; those URLs are rewritten, in the stream, to the gateway's public base so
clients never learn (or try to use) the archive's address.

Why aiohttp here when the rest of the bridge uses httpx: the hot path is a byte pump, and
httpcore reads 64 KiB at a time through the pure-Python h11 parser.  Measured on the
development machine (tests/bench/bench_gateway.py and the note of issue 8): 1.0 CPU-s per
252 MB study through httpx, 0.41-0.45 CPU-s through aiohttp (C parser, 1 MiB read
buffer), which is what lets the gateway keep up with a direct retrieval on two cores.  The
archive is asked for identity encoding (``Accept-Encoding: identity``) so what is passed
through or rewritten is exactly what was stored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from bridge.auth.header import AuthorizationHeader
from bridge.config import ArchiveSettings
from bridge.errors import ArchiveUnavailable, AuthError
from bridge.gateway.errors import ArchiveFailed, ArchiveRefused
from bridge.retry_after import retry_after

log = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
Params = Sequence[tuple[str, str]]

#: request headers passed to the archive; everything else (Authorization, Cookie, Host,
#: X-Forwarded-*, Accept-Encoding, ...) stays with the gateway
_FORWARD_REQUEST = ("accept", "accept-charset", "accept-language", "if-none-match",
                    "if-modified-since", "range", "cache-control")
#: response headers never passed back (RFC 9110 7.6.1 hop-by-hop, and the archive's auth)
_DROP_RESPONSE = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "www-authenticate", "set-cookie", "authorization",
    "server", "date",
})
DEFAULT_RETRY_AFTER = 5.0
#: answers that mean "down or busy, try later" (RFC 9110 15.6.3-5, RFC 6585 4); any other
#: 5xx but 501 (passed through: "not implemented" is the archive's answer) is ArchiveFailed
_UNAVAILABLE = frozenset({429, 502, 503, 504})
#: aiohttp's read buffer (flow-control high-water mark): larger buffers mean fewer, larger
#: chunks through the ASGI server, which is where a byte pump spends its CPU
READ_BUFFER = 1 << 20


class Upstream:
    """An archive answer whose status line and headers are read, its body not yet."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def aclose(self) -> None:
        # an unread remainder makes aiohttp close the connection instead of reusing it
        self._response.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (transfer coding removed, bytes otherwise untouched)."""
        async for chunk in self._response.content.iter_any():
            yield chunk


class _Rewriter:
    """Replace ``old`` by ``new`` in a byte stream, across chunk boundaries."""

    def __init__(self, old: bytes, new: bytes) -> None:
        self._old, self._new, self._tail = old, new, b""

    def feed(self, chunk: bytes) -> bytes:
        data, out, i = self._tail + chunk, [], 0
        while (j := data.find(self._old, i)) >= 0:
            out += [data[i:j], self._new]
            i = j + len(self._old)
        rest = data[i:]
        # hold back the longest suffix that may be the start of a match in the next chunk;
        # only unreplaced bytes are ever held back, so nothing is replaced twice
        keep = min(len(rest), len(self._old) - 1)
        while keep and not self._old.startswith(rest[-keep:]):
            keep -= 1
        out.append(rest[: len(rest) - keep])
        self._tail = rest[len(rest) - keep:]
        return b"".join(out)

    def flush(self) -> bytes:
        tail, self._tail = self._tail, b""
        return tail


class ArchiveProxy:
    """The archive behind the gateway: JSON lookups and streamed pass-through."""

    def __init__(self, archive: ArchiveSettings, *, public_base: str, timeout: float) -> None:
        self.name = archive.name
        self.base_url = archive.base_url.rstrip("/")
        self.public_base = public_base.rstrip("/")
        self._auth = AuthorizationHeader(archive.auth, timeout=archive.timeout)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=archive.timeout,
                                              sock_read=timeout)
        self._limit = max(16, archive.concurrency * 8)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # created on first use: an aiohttp session belongs to the running event loop
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit, limit_per_host=0),
                timeout=self._timeout, auto_decompress=False, read_bufsize=READ_BUFFER,
                raise_for_status=False)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _unavailable(self, path: str, detail: str, retry_after: float | None = None
                     ) -> ArchiveUnavailable:
        return ArchiveUnavailable(f"archive {self.name!r} {detail} for {path.split('/')[0]}",
                                  retry_after=retry_after or DEFAULT_RETRY_AFTER)

    async def _get(self, path: str, params: Params, headers: dict[str, str]
                   ) -> aiohttp.ClientResponse:
        """GET with the archive's credentials; one renewal and retry on 401 (RFC 6750 3.1).
        Raises :class:`ArchiveUnavailable` for no answer, 429, 502-504,
        :class:`ArchiveFailed` for 500 and other 5xx but 501, :class:`AuthError` when the
        archive refuses the gateway's own credentials."""
        url = f"{self.base_url}/{path}"
        headers = {**headers, "Accept-Encoding": "identity"}
        refused: str | None = None
        for _attempt in range(2):
            authorization = await self._auth.value(refused=refused)
            if authorization:
                headers["Authorization"] = authorization
            try:
                resp = await self._client().get(url, params=list(params), headers=headers,
                                                allow_redirects=False)
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise self._unavailable(path, f"unreachable ({type(exc).__name__})") from exc
            if resp.status == 401 and self._auth.renewable and refused is None:
                resp.release()
                refused = authorization
                continue
            break
        if resp.status == 401:
            why = resp.headers.get("WWW-Authenticate", "no WWW-Authenticate header")
            resp.release()
            raise AuthError(f"archive {self.name!r} refused the gateway's credentials (401): "
                            f"{why}")
        if resp.status in _UNAVAILABLE:
            after = retry_after(resp.headers)
            resp.release()
            raise self._unavailable(path, f"answered {resp.status}", after)
        if resp.status >= 500 and resp.status != 501:
            resp.release()
            raise ArchiveFailed(f"archive {self.name!r} failed the request ({resp.status}); "
                                "it may not support what was asked (e.g. that transfer "
                                "syntax)")
        return resp

    def refusal(self, status: int) -> ArchiveRefused | ArchiveFailed:
        """What the client is told when the archive answered ``status`` (a 4xx but 401, or
        501): the status and the gateway's words, never the archive's error body.  A 403
        or 407 refuses the gateway itself: 502, like any failure of the archive."""
        if status in (403, 407):
            return ArchiveFailed(f"archive {self.name!r} refused the gateway's request "
                                 f"({status})")
        what = {400: "refused the request as malformed",
                404: "has no such resource",
                406: "cannot answer in a media type the request accepts",
                501: "does not implement this request"}.get(status, "refused the request")
        return ArchiveRefused(f"the archive {what} (HTTP {status})", http_status=status)

    async def qido_json(self, path: str, params: Params) -> list[dict[str, Any]]:
        """A QIDO-RS query as DICOM JSON (PS3.18 10.6.3.3.1); [] for 204 or 404.  Any other
        refusal raises :meth:`refusal` (an outage is only what :meth:`_get` says it is)."""
        resp = await self._get(path, params, {"Accept": DICOM_JSON})
        try:
            if resp.status in (204, 404):
                return []
            if resp.status >= 400:
                raise self.refusal(resp.status)
            try:
                content = await resp.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise self._unavailable(path, f"broke off ({type(exc).__name__})") from exc
        finally:
            resp.release()
        if not content:
            return []
        try:
            body = json.loads(self.rewrite_text(content.decode("utf-8")))
        except ValueError as exc:
            raise self._unavailable(path, "returned non-JSON") from exc
        if not isinstance(body, list):
            raise self._unavailable(path, "returned a non-array")
        return [r for r in body if isinstance(r, dict)]

    def rewrite_text(self, text: str) -> str:
        return text.replace(self.base_url, self.public_base)

    async def open(self, path: str, params: Params, headers: Mapping[str, str], *,
                   passed: frozenset[int] = frozenset()) -> Upstream:
        """Send a GET and return a successful answer (< 400, or a status in ``passed``)
        with its body unread; the caller must close it (``stream`` does).

        Raises as :meth:`_get`, and :meth:`refusal` for any other 4xx or 501, so the
        archive's error body never reaches the client.
        """
        fwd = {k: v for k in _FORWARD_REQUEST if (v := headers.get(k)) is not None}
        resp = await self._get(path, params, fwd)
        if resp.status >= 400 and resp.status not in passed:
            resp.release()
            raise self.refusal(resp.status)
        return Upstream(resp)

    def stream(self, upstream: Upstream, *, rewrite: bool) -> StreamingResponse:
        """Hand the archive's answer to the client as it arrives."""
        headers = {k.lower(): v for k, v in upstream.headers.items()
                   if k.lower() not in _DROP_RESPONSE}
        body: AsyncIterator[bytes]
        if rewrite:
            headers.pop("content-length", None)
            body = self._rewritten(upstream)
        else:
            body = self._raw(upstream)
        return StreamingResponse(body, status_code=upstream.status_code, headers=headers,
                                 background=BackgroundTask(upstream.aclose))

    async def _raw(self, upstream: Upstream) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.chunks():
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            # headers are gone already: all we can do is cut the stream (the client sees
            # a truncated multipart and must not treat it as complete)
            log.warning("archive stream broke", extra={"archive": self.name,
                                                       "error_type": type(exc).__name__})
            raise
        finally:
            await upstream.aclose()

    async def _rewritten(self, upstream: Upstream) -> AsyncIterator[bytes]:
        rewriter = _Rewriter(self.base_url.encode(), self.public_base.encode())
        try:
            async for chunk in upstream.chunks():
                out = rewriter.feed(chunk)
                if out:
                    yield out
        finally:
            await upstream.aclose()
        tail = rewriter.flush()
        if tail:
            yield tail
