"""bridge.httpclient: an idempotent request whose kept-alive connection was closed under it
is sent once more; nothing else is.  Against a real loopback socket server that closes
every connection, unanswered, when a second request arrives on it: the race a client
loses when a server's keep-alive timeout (Orthanc's is 1 s) ends just as it reuses the
connection, made deterministic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest

from bridge.httpclient import HttpClient


class ClosingServer:
    """HTTP/1.1 on loopback: answers the first request of each connection (keep-alive) and
    closes the connection without a word when a second one comes."""

    def __init__(self) -> None:
        self.requests: list[str] = []  # request lines, in order, answered or not
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = False
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0].decode()
                self.requests.append(line)
                length = next((int(h.split(b":")[1]) for h in head.split(b"\r\n")
                               if h.lower().startswith(b"content-length:")), 0)
                if length:
                    await reader.readexactly(length)
                if answered:
                    return  # the keep-alive timeout ended: close, no answer
                answered = True
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Content-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def closing_server() -> AsyncIterator[tuple[ClosingServer, str]]:
    # started in the test's own event loop (the fixtures' loop is the session's)
    srv = ClosingServer()
    url = await srv.start()
    try:
        yield srv, url
    finally:
        await srv.stop()


async def test_a_get_on_a_connection_closed_under_it_is_sent_again_on_a_new_one() -> None:
    async with closing_server() as (srv, url), \
            HttpClient(base_url=url) as client:
        assert (await client.get("/changes?since=1")).text == "ok"
        assert (await client.get("/changes?since=2")).text == "ok"
        assert (await client.head("/changes")).status_code == 200
    # the 2nd GET died on the reused connection and was answered on a new one; likewise HEAD
    assert srv.requests == ["GET /changes?since=1 HTTP/1.1", "GET /changes?since=2 HTTP/1.1",
                            "GET /changes?since=2 HTTP/1.1", "HEAD /changes HTTP/1.1",
                            "HEAD /changes HTTP/1.1"]
    assert srv.connections == 3


async def test_without_the_wrapper_the_same_race_is_lost() -> None:
    async with closing_server() as (_, url), httpx.AsyncClient(base_url=url) as client:
        await client.get("/changes?since=1")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/changes?since=2")


async def test_a_post_is_not_sent_again() -> None:
    async with closing_server() as (srv, url), \
            HttpClient(base_url=url) as client:
        await client.get("/metadata")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/fhir", content=b"{}")
    assert [r.split()[0] for r in srv.requests] == ["GET", "POST"]


async def test_a_get_dropped_twice_is_the_callers_error() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    async with HttpClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("http://archive.test/changes")
    assert calls == 2


async def test_the_environments_proxy_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # why a client subclass and not a transport wrapper: httpx drops HTTP_PROXY once a
    # transport is given, and a hospital network may need it
    async with closing_server() as (srv, url):
        monkeypatch.setenv("HTTP_PROXY", url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with HttpClient() as client:
            assert (await client.get("http://archive.invalid/dicom-web/studies")).text == "ok"
    assert srv.requests == ["GET http://archive.invalid/dicom-web/studies HTTP/1.1"]
