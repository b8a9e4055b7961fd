"""Streaming pass-through to the archive's DICOMweb API (PS3.18 10.4 WADO-RS, 10.6 QIDO-RS).

Responses are streamed chunk by chunk (``httpx`` stream -> Starlette ``StreamingResponse``),
never buffered whole, so a 1 GB study passes in bounded memory.  The client's Accept
(media type and ``transfer-syntax`` parameter, PS3.18 8.7) is passed through untouched, as
are the archive's Content-Type and multipart boundaries: the bytes the client receives are
the archive's.  The gateway adds the archive's credentials (``build_auth``); the client's
Authorization and cookies are never forwarded, and hop-by-hop headers (RFC 9110 7.6.1) and
the archive's authentication challenges are dropped from the answer.

JSON answers (QIDO results, WADO-RS metadata) name the archive in RetrieveURL (0008,1190)
and BulkDataURI; those URLs are rewritten, in the stream, to the gateway's public base so
clients never learn (or try to use) the archive's address.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from bridge.auth.outbound import build_auth
from bridge.config import ArchiveSettings
from bridge.errors import ArchiveUnavailable

log = logging.getLogger(__name__)

DICOM_JSON = "application/dicom+json"
Params = Sequence[tuple[str, str]]

#: request headers passed to the archive; everything else (Authorization, Cookie, Host,
#: X-Forwarded-*, ...) stays with the gateway
_FORWARD_REQUEST = ("accept", "accept-encoding", "accept-charset", "accept-language",
                    "if-none-match", "if-modified-since", "range", "cache-control")
#: response headers never passed back (RFC 9110 7.6.1 hop-by-hop, and the archive's auth)
_DROP_RESPONSE = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "www-authenticate", "set-cookie", "authorization",
    "server", "date",
})
DEFAULT_RETRY_AFTER = 5.0


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


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

    def __init__(
        self, archive: ArchiveSettings, *, public_base: str, timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = archive.name
        self.base_url = archive.base_url
        self.public_base = public_base.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=archive.base_url + "/",
            auth=build_auth(archive.auth, timeout=archive.timeout),
            timeout=httpx.Timeout(archive.timeout, read=timeout),
            transport=transport,
            limits=httpx.Limits(max_connections=max(16, archive.concurrency * 8),
                                max_keepalive_connections=max(8, archive.concurrency * 4)),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _unavailable(self, path: str, detail: str, retry_after: float | None = None
                     ) -> ArchiveUnavailable:
        return ArchiveUnavailable(f"archive {self.name!r} {detail} for {path.split('/')[0]}",
                                  retry_after=retry_after or DEFAULT_RETRY_AFTER)

    async def qido_json(self, path: str, params: Params) -> list[dict[str, Any]]:
        """A QIDO-RS query as DICOM JSON (PS3.18 10.6.3.3.1); [] for 204 or 404."""
        try:
            resp = await self._client.get(path, params=list(params),
                                          headers={"Accept": DICOM_JSON})
        except httpx.HTTPError as exc:
            raise self._unavailable(path, f"unreachable ({type(exc).__name__})") from exc
        if resp.status_code in (204, 404):
            return []
        if resp.status_code == 429 or resp.status_code >= 500:
            raise self._unavailable(path, f"answered {resp.status_code}", _retry_after(resp))
        if resp.status_code >= 400:
            raise self._unavailable(path, f"refused the query ({resp.status_code})")
        if not resp.content:
            return []
        try:
            body = json.loads(self.rewrite_text(resp.text))
        except ValueError as exc:
            raise self._unavailable(path, "returned non-JSON") from exc
        if not isinstance(body, list):
            raise self._unavailable(path, "returned a non-array")
        return [r for r in body if isinstance(r, dict)]

    def rewrite_text(self, text: str) -> str:
        return text.replace(self.base_url, self.public_base)

    async def open(self, path: str, params: Params, headers: Any) -> httpx.Response:
        """Send a GET and return the streamed response (status and headers read, body not).

        Raises :class:`ArchiveUnavailable` for no answer, 5xx or 429; the caller decides
        what other statuses mean and must close the response (``stream`` does).
        """
        fwd = {k: v for k in _FORWARD_REQUEST if (v := headers.get(k)) is not None}
        request = self._client.build_request("GET", path, params=list(params), headers=fwd)
        try:
            resp = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unavailable(path, f"unreachable ({type(exc).__name__})") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            await resp.aclose()
            raise self._unavailable(path, f"answered {resp.status_code}", _retry_after(resp))
        return resp

    def stream(self, resp: httpx.Response, *, rewrite: bool) -> StreamingResponse:
        """Hand the archive's response to the client as it arrives."""
        headers = {k: v for k, v in resp.headers.items() if k.lower() not in _DROP_RESPONSE}
        body: AsyncIterator[bytes]
        if rewrite:
            # identity-decoded bytes (aiter_bytes), so the length and encoding change
            headers.pop("content-length", None)
            headers.pop("content-encoding", None)
            body = self._rewritten(resp)
        else:
            body = self._raw(resp)
        return StreamingResponse(body, status_code=resp.status_code, headers=headers,
                                 background=BackgroundTask(resp.aclose))

    async def _raw(self, resp: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            # headers are gone already: all we can do is cut the stream (the client sees
            # a truncated multipart and must not treat it as complete)
            log.warning("archive stream broke", extra={"archive": self.name,
                                                       "error_type": type(exc).__name__})
            raise

    async def _rewritten(self, resp: httpx.Response) -> AsyncIterator[bytes]:
        rewriter = _Rewriter(self.base_url.encode(), self.public_base.encode())
        async for chunk in resp.aiter_bytes():
            out = rewriter.feed(chunk)
            if out:
                yield out
        tail = rewriter.flush()
        if tail:
            yield tail
