"""Request bodies are read in counted pieces up to a hard cap (issue 12 item 5).

The middleware caps every route that reads a body however it reads it (``request.form()``,
a declared body model); :func:`read_body` caps a route that needs its body whole.  Bodies
here are generated while sent, and the count of bytes the app was handed is checked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from bridge.api.app import bounds_itself
from bridge.errors import RequestTooLarge
from bridge.httpbody import BodyLimit, read_body

LIMIT = 64 * 1024
CHUNK = 16 * 1024


class Doc(BaseModel):
    name: str


def _app() -> tuple[FastAPI, dict[str, Any]]:
    seen: dict[str, Any] = {"called": [], "read": 0}
    app = FastAPI()

    @app.post("/form")
    async def form(request: Request) -> dict[str, int]:
        seen["called"].append("form")
        fields = await request.form()
        return {"fields": len(fields)}

    @app.post("/model")
    async def model(doc: Doc) -> dict[str, str]:
        seen["called"].append("model")
        return {"name": doc.name}

    @app.post("/whole")
    async def whole(request: Request) -> dict[str, int]:
        seen["called"].append("whole")
        try:
            body = await read_body(request, limit=LIMIT)
        except RequestTooLarge as exc:
            return {"refused": exc.limit}
        return {"length": len(body)}

    @app.post("/stream")
    async def stream(request: Request) -> dict[str, int]:
        async for chunk in request.stream():
            seen["read"] += len(chunk)
        return {"length": seen["read"]}

    app.add_middleware(BodyLimit, limit=LIMIT,
                       exempt=lambda method, path: path in ("/stream", "/whole"))
    return app, seen


async def _chunks(total: int, head: bytes = b"") -> AsyncIterator[bytes]:
    if head:
        yield head
    for _ in range(total // CHUNK):
        yield b"a" * CHUNK


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_a_declared_oversized_body_is_refused_before_the_route_runs() -> None:
    app, seen = _app()
    async with _client(app) as client:
        resp = await client.post("/form", content=_chunks(4 * LIMIT),
                                 headers={"Content-Length": str(4 * LIMIT),
                                          "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status_code == 413
    assert resp.json() == {"detail": f"request body over the limit of {LIMIT} bytes"}
    assert seen["called"] == []


@pytest.mark.parametrize(("path", "ctype", "head"), [
    ("/form", "application/x-www-form-urlencoded", b"f="),
    ("/form", "multipart/form-data; boundary=xyz",
     b'--xyz\r\nContent-Disposition: form-data; name="f"\r\n\r\n'),
    ("/model", "application/json", b'{"name": "'),
])
async def test_a_chunked_oversized_body_is_refused_with_413_whatever_reads_it(
        path: str, ctype: str, head: bytes) -> None:
    app, _ = _app()
    async with _client(app) as client:
        resp = await client.post(path, content=_chunks(100 * LIMIT, head),
                                 headers={"Content-Type": ctype})
    assert resp.status_code == 413, resp.text
    assert str(LIMIT) in resp.json()["detail"]


async def test_bodies_within_the_limit_pass() -> None:
    app, _ = _app()
    async with _client(app) as client:
        form = await client.post("/form", data={"form_token": "x" * 1000})
        model = await client.post("/model", json={"name": "n" * 1000})
    assert (form.status_code, form.json()) == (200, {"fields": 1})
    assert (model.status_code, model.json()) == (200, {"name": "n" * 1000})


async def test_an_exempt_streaming_route_reads_past_the_limit() -> None:
    app, seen = _app()
    async with _client(app) as client:
        resp = await client.post("/stream", content=_chunks(10 * LIMIT))
    assert resp.json() == {"length": 10 * LIMIT} and seen["read"] == 10 * LIMIT


async def test_read_body_stops_at_the_limit_declared_or_chunked() -> None:
    app, _ = _app()
    async with _client(app) as client:
        chunked = await client.post("/whole", content=_chunks(100 * LIMIT))
        declared = await client.post("/whole", content=_chunks(2 * LIMIT),
                                     headers={"Content-Length": str(2 * LIMIT)})
        exact = await client.post("/whole", content=b"a" * LIMIT)
    assert chunked.json() == {"refused": LIMIT}
    assert declared.json() == {"refused": LIMIT}
    assert exact.json() == {"length": LIMIT}


async def test_read_body_refuses_a_declared_oversized_body_without_receiving_any() -> None:
    received: list[Any] = []

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": True}

    scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
             "headers": [(b"content-length", str(LIMIT + 1).encode())]}
    with pytest.raises(RequestTooLarge):
        await read_body(Request(scope, receive), limit=LIMIT)
    assert received == []


def test_only_the_stow_proxy_and_notifications_bound_their_own_bodies() -> None:
    assert bounds_itself("POST", "/dicom-web/studies")
    assert bounds_itself("POST", "/dicom-web/studies/1.2.3")
    assert bounds_itself("POST", "/notifications")
    for method, path in (("POST", "/app/logout"), ("POST", "/smart/launch"),
                         ("PUT", "/dicom-web/studies"), ("POST", "/status"),
                         ("POST", "/dicom-web/studiesx")):
        assert not bounds_itself(method, path)
