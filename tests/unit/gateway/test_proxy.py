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

from bridge.config import ArchiveSettings
from bridge.errors import ArchiveUnavailable, AuthError
from bridge.gateway.errors import ArchiveFailed, ArchiveRefused
from bridge.gateway.proxy import ArchiveProxy
from tests.support.fake_archive import FakeArchive

PUBLIC = "https://bridge.example.org/dicom-web"


@pytest_asyncio.fixture(loop_scope="function")  # the tests' loop serves the archive
async def archive() -> AsyncIterator[FakeArchive]:
    """Records what it was sent; answers as told: bearer ``good`` only, metadata naming the
    archive's own address split over many small writes, anything else 200 kB of bytes."""
    fake = FakeArchive(accept_tokens={"Bearer good"}, bulk=b"\x00\x01" * 100_000, chunk=5)
    async with fake.serve():
        fake.instances["1.2"] = [{"00081190": {"vr": "UR", "Value": [f"{fake.base}/studies/1.2"]}}]
        yield fake


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
