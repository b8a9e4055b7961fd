"""The gateway's introspection client (issue 12 item 11) without servers: which answers of
the EHR are an outage (503 + Retry-After) and which a configuration error (500).  Against
the real sandbox EHR: tests/integration/gateway/test_gateway_introspection_auth.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge.auth.health import AUTH_HEALTH
from bridge.config import GatewaySettings
from bridge.gateway.errors import GatewayMisconfigured, InvalidToken, TokenServiceUnavailable
from bridge.gateway.introspection import Introspector

SECRET = "s" * 40
URL = "https://ehr.example.org/introspect"
STATIC = "static-token-" + "t" * 20


@pytest.fixture(autouse=True)
def _forget_auth_failures() -> Iterator[None]:
    """The refusals recorded for ``/status`` (process-wide) do not outlive the test."""
    yield
    AUTH_HEALTH.clear()


def _introspector(answer: Any, **auth: Any) -> tuple[Introspector, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    settings = GatewaySettings(enabled=True, viewer_token_secret=SECRET, introspection_url=URL,
                               **(auth or {"introspection_auth": {"kind": "bearer",
                                                                  "token": STATIC}}))
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Introspector(settings, http=http), seen


async def test_the_configured_bearer_token_is_presented_and_an_active_answer_returned() -> None:
    intro, seen = _introspector(httpx.Response(200, json={"active": True, "scope": "x"}))
    assert (await intro.introspect("caller-token"))["scope"] == "x"
    assert seen[0].headers["authorization"] == f"Bearer {STATIC}"
    assert b"token=caller-token" in seen[0].content
    inactive, _ = _introspector(httpx.Response(200, json={"active": False}))
    with pytest.raises(InvalidToken):
        await inactive.introspect("caller-token")
    await inactive.probe()  # an inactive random token: the endpoint works


async def test_basic_from_client_id_and_secret_when_no_introspection_auth_is_set() -> None:
    intro, seen = _introspector(httpx.Response(200, json={"active": False}),
                                client_id="gw", client_secret="gateway-secret-" + "g" * 20)
    await intro.probe()
    assert seen[0].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_a_refusal_of_the_gateway_is_a_configuration_error(status: int) -> None:
    intro, _ = _introspector(httpx.Response(status, headers={
        "WWW-Authenticate": 'Bearer error="invalid_token"'}))
    with pytest.raises(GatewayMisconfigured, match=f"refuses the gateway's credentials "
                                                   f"\\(HTTP {status}\\)") as caught:
        await intro.introspect("caller-token")
    assert caught.value.http_status == 500 and intro.refusal is not None
    with pytest.raises(GatewayMisconfigured):
        await intro.probe()


@pytest.mark.parametrize("answer", [httpx.Response(503), httpx.Response(429),
                                    httpx.ConnectError("refused"),
                                    httpx.Response(200, text="<html>")])
async def test_an_ehr_that_is_down_or_busy_is_an_outage(answer: Any) -> None:
    intro, _ = _introspector(answer)
    with pytest.raises(TokenServiceUnavailable):
        await intro.introspect("caller-token")
    assert intro.refusal is None


async def test_an_unreachable_token_endpoint_is_an_outage_not_a_refusal() -> None:
    intro, seen = _introspector(httpx.Response(200, json={"active": True}), introspection_auth={
        "kind": "client_credentials", "client_id": "gw", "client_secret": "c" * 24,
        "token_url": "http://127.0.0.1:9/token"})
    with pytest.raises(TokenServiceUnavailable, match="token endpoint"):
        await intro.introspect("caller-token")
    assert not seen and intro.refusal is None


async def test_a_recovered_endpoint_clears_the_refusal() -> None:
    answers = [httpx.Response(401), httpx.Response(200, json={"active": False})]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    settings = GatewaySettings(enabled=True, viewer_token_secret=SECRET, introspection_url=URL,
                               introspection_auth={"kind": "bearer", "token": STATIC})
    intro = Introspector(settings, http=httpx.AsyncClient(
        transport=httpx.MockTransport(handler)))
    with pytest.raises(GatewayMisconfigured):
        await intro.probe()
    # a static token is not renewable: one request per check, no retry loop
    assert len(answers) == 1
    await intro.probe()
    assert intro.refusal is None
