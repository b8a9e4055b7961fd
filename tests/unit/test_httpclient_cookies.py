"""The HTTP client's cookie jar reads only responses that set a cookie, and keeps those."""

from __future__ import annotations

import httpx

from bridge.httpclient import HttpClient


async def test_a_cookie_set_by_the_server_is_kept_and_sent_back() -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Cookie"))
        if request.url.path == "/login":
            return httpx.Response(200, headers={"Set-Cookie": "route=a1; Path=/"})
        return httpx.Response(200, json={})

    async with HttpClient(base_url="http://lb.invalid",
                          transport=httpx.MockTransport(handler)) as client:
        await client.get("/plain")
        await client.get("/login")
        await client.get("/next")
        assert dict(client.cookies) == {"route": "a1"}
    assert seen == [None, None, "route=a1"]


async def test_cookies_given_to_the_client_are_sent_and_kept() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=request.headers.get("Cookie", ""))

    async with HttpClient(cookies={"a": "1"},
                          transport=httpx.MockTransport(handler)) as client:
        assert (await client.get("http://x.invalid/")).text == "a=1"
        client.cookies = {"b": "2"}
        assert (await client.get("http://x.invalid/")).text == "b=2"
