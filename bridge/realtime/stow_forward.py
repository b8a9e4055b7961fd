"""The streaming STOW-RS client of one archive (PS3.18 10.5): a request body is sent on as
it arrives, checked on the way by :class:`MultipartInspector`, never buffered whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.requests import Request

from bridge.archive.client import DicomwebClient
from bridge.auth.outbound import build_auth
from bridge.errors import Permanent
from bridge.realtime.metrics import STOW_BYTES
from bridge.realtime.multipart import MultipartError, MultipartInspector

#: bytes gathered before a write to the archive: bounds memory per upload (~2x this)
FLUSH = 256 * 1024


class UpstreamAborted(Permanent):
    """The body failed inspection mid-stream; the upstream request was cut short (answered
    with the inspection's ``http_status``)."""

    kind = "upstream-aborted"

    def __init__(self, error: MultipartError, sent: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.sent = sent
        self.http_status: int = error.http_status


class StowForwarder:
    """Streams STOW-RS requests to one archive, with the archive's own credentials."""

    def __init__(self, archive: DicomwebClient, *, timeout: float) -> None:
        self.archive = archive
        settings = archive.settings
        self._client = httpx.AsyncClient(
            base_url=settings.base_url + "/",
            auth=build_auth(settings.auth, timeout=settings.timeout),
            # the archive parses a large upload only once it has it all: long read timeout
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            limits=httpx.Limits(max_connections=settings.concurrency * 4),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, path: str, body: bytes, content_type: str) -> httpx.Response:
        """STOW-RS of a body built by the bridge itself (the migration's retrieved
        instances): nothing to stream or inspect on the way; transport errors propagate."""
        resp = await self._client.post(path, content=body, headers={
            "Content-Type": content_type, "Accept": "application/dicom+json"})
        STOW_BYTES.inc(len(body))
        return resp

    async def forward(
        self, request: Request, *, path: str, inspector: MultipartInspector
    ) -> tuple[httpx.Response, int]:
        sent = 0
        failure: list[MultipartError] = []

        async def body() -> AsyncIterator[bytes]:
            # Received pieces (often a few KiB) are sent in batches of about FLUSH bytes:
            # per-write overhead, not copying, limits throughput.  The newest piece is always
            # held back, so the body's last bytes leave only after the inspector saw it close
            # properly: a truncated body never reaches the archive complete.
            nonlocal sent
            held: bytes | None = None
            pending: list[bytes] = []
            size = 0
            try:
                async for chunk in request.stream():
                    if not chunk:
                        continue
                    inspector.feed(chunk)
                    if held is not None:
                        pending.append(held)
                        size += len(held)
                    held = chunk
                    if size >= FLUSH:
                        sent += size
                        yield b"".join(pending)
                        pending, size = [], 0
                inspector.finish()
            except MultipartError as exc:
                failure.append(exc)
                raise
            if held is not None:
                pending.append(held)
                size += len(held)
            if pending:
                sent += size
                yield b"".join(pending)

        headers = {"Content-Type": request.headers["content-type"],
                   "Accept": request.headers.get("accept", "application/dicom+json")}
        if "content-length" in request.headers:
            headers["Content-Length"] = request.headers["content-length"]
        try:
            resp = await self._client.post(path, content=body(), headers=headers)
        except MultipartError as exc:
            raise UpstreamAborted(exc, sent) from exc
        except httpx.HTTPError as exc:
            if failure:
                raise UpstreamAborted(failure[0], sent) from exc
            raise
        STOW_BYTES.inc(sent)
        return resp, sent
