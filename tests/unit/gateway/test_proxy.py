"""The gateway's archive pass-through against a small aiohttp archive on a loopback port:
credentials added (and renewed once on 401), the client's kept back, identity encoding
asked for, URLs rewritten, outages mapped to ArchiveUnavailable with Retry-After, a
failed request to ArchiveFailed."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from bridge.config import ArchiveSettings
from bridge.errors import ArchiveUnavailable, AuthError
from bridge.gateway.errors import ArchiveFailed, ArchiveRefused
from bridge.gateway.proxy import ArchiveProxy

PUBLIC = "https://bridge.example.org/dicom-web"


class FakeArchive:
    """Records what it was sent; answers as told."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.accept_tokens: set[str] = {"Bearer good"}
        self.status = 200
        self.base = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer") and auth not in self.accept_tokens:
            return web.Response(status=401, headers={
                "WWW-Authenticate": 'Bearer error="invalid_token"'})
        if self.status != 200:
            return web.Response(status=self.status, headers={"Retry-After": "17"})
        if request.path.endswith("/metadata"):
            # the archive's own address, split over many small writes
            body = f'[{{"00081190":{{"vr":"UR","Value":["{self.base}/studies/1.2"]}}}}]'
            resp = web.StreamResponse(headers={"Content-Type": "application/dicom+json"})
            await resp.prepare(request)
            for i in range(0, len(body), 5):
                await resp.write(body[i:i + 5].encode())
            await resp.write_eof()
            return resp
        return web.Response(body=b"\x00\x01" * 100_000,
                            content_type="application/octet-stream")


@pytest_asyncio.fixture(loop_scope="function")  # the tests' loop serves the archive
async def archive(unused_tcp_port: int) -> AsyncIterator[FakeArchive]:
    fake = FakeArchive()
    app = web.Application()
    app.router.add_get("/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    fake.base = f"http://127.0.0.1:{unused_tcp_port}/dicom-web"
    try:
        yield fake
    finally:
        await runner.cleanup()


def _proxy(base: str, **auth: Any) -> ArchiveProxy:
    settings = ArchiveSettings(name="pacs", base_url=base, auth=auth or {"kind": "none"})
    return ArchiveProxy(settings, public_base=PUBLIC, timeout=10)


async def _body(response: Any) -> bytes:
    out = b""
    async for chunk in response.body_iterator:
        out += chunk if isinstance(chunk, bytes) else chunk.encode()
    return out


async def test_basic_credentials_are_added_and_the_clients_are_not(archive: FakeArchive
                                                                     ) -> None:
    proxy = _proxy(archive.base, kind="basic", username="gw", password="pw-123456")
    upstream = await proxy.open("studies/1.2", [],
                                {"authorization": "Bearer the-users-token",
                                 "cookie": "session=1", "accept": "application/dicom",
                                 "accept-encoding": "gzip"})
    body = await _body(proxy.stream(upstream, rewrite=False))
    await proxy.aclose()
    assert body == b"\x00\x01" * 100_000
    sent = archive.seen[-1]
    assert sent["Authorization"] == "Basic " + base64.b64encode(b"gw:pw-123456").decode()
    assert "Cookie" not in sent and sent["Accept"] == "application/dicom"
    assert sent["Accept-Encoding"] == "identity"


async def test_json_is_rewritten_to_the_public_base_across_chunks(archive: FakeArchive
                                                                    ) -> None:
    proxy = _proxy(archive.base)
    response = proxy.stream(await proxy.open("studies/1.2/metadata", [], {}), rewrite=True)
    body = await _body(response)
    assert archive.base.encode() not in body
    assert f"{PUBLIC}/studies/1.2".encode() in body
    assert "content-length" not in response.headers
    rows = await proxy.qido_json("studies/1.2/metadata", [])
    assert rows[0]["00081190"]["Value"] == [f"{PUBLIC}/studies/1.2"]
    await proxy.aclose()


async def test_a_refused_token_is_renewed_once_then_auth_error(archive: FakeArchive,
                                                                 monkeypatch: pytest.MonkeyPatch
                                                                 ) -> None:
    proxy = _proxy(archive.base, kind="bearer", token="stale")
    issued = iter(["good"])

    async def current(*, refused: str | None = None) -> str:
        # stands in for the renewal the real token source does on a refused token
        return next(issued) if refused == "stale" else "stale"

    bearer = proxy._auth._bearer
    assert bearer is not None
    monkeypatch.setattr(bearer, "current", current)
    upstream = await proxy.open("studies/1.2", [], {})
    assert upstream.status_code == 200
    await upstream.aclose()
    assert [h["Authorization"] for h in archive.seen] == ["Bearer stale", "Bearer good"]
    archive.accept_tokens = set()
    issued = iter(["still-bad"])
    with pytest.raises(AuthError, match="invalid_token"):
        await proxy.open("studies/1.2", [], {})
    await proxy.aclose()


async def test_outages_are_archive_unavailable_with_retry_after(archive: FakeArchive) -> None:
    proxy = _proxy(archive.base)
    archive.status = 503
    with pytest.raises(ArchiveUnavailable) as caught:
        await proxy.open("studies/1.2", [], {})
    assert caught.value.retry_after == 17
    with pytest.raises(ArchiveUnavailable):
        await proxy.qido_json("studies", [("PatientID", "X")])
    archive.status = 500  # up, but failing this request: 502 without Retry-After
    with pytest.raises(ArchiveFailed, match="failed the request"):
        await proxy.open("studies/1.2", [], {})
    archive.status = 501  # the archive's own answer: its status, the gateway's words
    with pytest.raises(ArchiveRefused, match="does not implement") as refused:
        await proxy.open("studies/1.2/rendered", [], {})
    assert refused.value.http_status == 501
    await proxy.aclose()
    down = _proxy("http://127.0.0.1:9/dicom-web")
    with pytest.raises(ArchiveUnavailable, match="unreachable"):
        await down.open("studies/1.2", [], {})
    await down.aclose()
