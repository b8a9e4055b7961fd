"""bridge.aiohttp_transport under the bridge's HTTP client, against real loopback servers:
the same answers, bodies, errors and proxy use as httpx's own transport, so the archive's
and the FHIR server's clients behave the same over it (issue 19)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from bridge.aiohttp_transport import AiohttpTransport
from bridge.httpclient import HttpClient
from tests.unit.test_httpclient import ClosingServer, closing_server


class Server:
    """HTTP/1.1 on loopback answering by path: ``/echo`` returns the request's method,
    headers and body, ``/big`` 3 MB, ``/silent`` never answers, ``/hangup`` closes at once."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self.open = 0  # connections open now, and the most at once
        self.peak = 0

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.peak = max(self.peak, self.open)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = next((int(h.split(":")[1]) for h in lines
                           if h.lower().startswith("content-length:")), 0)
            body = await reader.readexactly(length) if length else b""
            if path == "/hangup":
                return
            if path == "/silent":
                await asyncio.sleep(30)
                return
            if path == "/slow":
                await asyncio.sleep(0.1)
            if path == "/big":
                payload = b"x" * 3_000_000
                ctype = b"application/octet-stream"
            else:
                payload = ("\n".join([lines[0], *sorted(h.lower() for h in lines[1:] if h)])
                           .encode() + b"\n\n" + body)
                ctype = b"text/plain"
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Type: " + ctype + b"\r\nX-Two: a\r\n"
                         b"X-Two: b\r\nContent-Length: " + str(len(payload)).encode()
                         + b"\r\n\r\n" + payload)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            writer.close()


@contextlib.asynccontextmanager
async def server() -> AsyncIterator[str]:
    async with served() as (_, url):
        yield url


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[tuple[Server, str]]:
    srv = Server()
    url = await srv.start()
    try:
        yield srv, url
    finally:
        await srv.stop()


async def test_answers_headers_and_bodies_pass_through_unchanged() -> None:
    async with server() as url, HttpClient(transport=AiohttpTransport(),
                                           timeout=10) as client:
        resp = await client.post(f"{url}/echo", content=b'{"resourceType":"Bundle"}',
                                 headers={"Content-Type": "application/fhir+json",
                                          "Authorization": "Bearer t0ken"})
        assert resp.status_code == 201
        assert resp.headers.get_list("x-two") == ["a", "b"]
        text = resp.text
        assert text.startswith("POST /echo HTTP/1.1\n")
        assert "authorization: bearer t0ken" in text
        assert "content-type: application/fhir+json" in text
        assert "content-length: 25" in text
        assert text.endswith('\n\n{"resourceType":"Bundle"}')
        big = await client.get(f"{url}/big")
        assert len(big.content) == 3_000_000


async def test_a_streamed_upload_is_sent_as_it_is_read() -> None:
    async def parts() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"part{i};".encode()

    async with server() as url, HttpClient(transport=AiohttpTransport(),
                                           timeout=10) as client:
        resp = await client.post(f"{url}/echo", content=parts(),
                                 headers={"Content-Length": "18"})
        assert resp.text.endswith("\n\npart0;part1;part2;")


async def test_errors_are_httpx_errors_of_the_same_kind() -> None:
    async with server() as url, HttpClient(transport=AiohttpTransport(),
                                           timeout=httpx.Timeout(10, read=0.5)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{url}/silent")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"{url}/hangup", content=b"x")  # not repeated: not idempotent
    async with HttpClient(transport=AiohttpTransport(), timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{url}/echo")  # the server is gone


async def test_a_get_on_a_connection_closed_under_it_is_repeated_once() -> None:
    async with closing_server() as (srv, url), HttpClient(
            transport=AiohttpTransport(), timeout=10) as client:
        assert (await client.get(f"{url}/a")).text == "ok"
        assert (await client.get(f"{url}/b")).text == "ok"  # kept-alive one closed: again
    assert isinstance(srv, ClosingServer)
    assert srv.requests == ["GET /a HTTP/1.1", "GET /b HTTP/1.1", "GET /b HTTP/1.1"]


async def test_the_environments_proxy_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    async with closing_server() as (srv, url):
        monkeypatch.setenv("HTTP_PROXY", url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with HttpClient(transport=AiohttpTransport(), timeout=10) as client:
            assert (await client.get("http://archive.invalid/dicom-web/studies")).text == "ok"
    assert srv.requests == ["GET http://archive.invalid/dicom-web/studies HTTP/1.1"]


async def test_the_connection_limit_holds() -> None:
    async with served() as (srv, url), HttpClient(
            transport=AiohttpTransport(max_connections=2), timeout=10) as client:
        answers = await asyncio.gather(*(client.get(f"{url}/slow") for _ in range(10)))
    assert [a.status_code for a in answers] == [201] * 10
    assert srv.peak == 2  # ten requests at once, never more than two connections
