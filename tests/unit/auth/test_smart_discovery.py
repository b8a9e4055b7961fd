"""One SMART discovery and one token-response reader (issue 18) for the sync's backend
services client and the launch app: the same document read the same way, each client
wording failures for its audience."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from bridge.auth.smart_backend import discover_token_endpoint
from bridge.auth.smart_discovery import DiscoveryProblem, SmartConfiguration, discover
from bridge.auth.tokens import TokenProblem, read_token_response, token_lifetime
from bridge.errors import AuthError
from smart_app.launch import LaunchError
from smart_app.launch import discover as launch_discover

FHIR = "https://ehr.example.org/fhir"
DOC = {
    "authorization_endpoint": "https://ehr.example.org/authorize",
    "token_endpoint": "https://ehr.example.org/token",
    "capabilities": ["launch-ehr", "sso-openid-connect"],
    "code_challenge_methods_supported": ["S256"],
    "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
    "issuer": "https://ehr.example.org",
    "revocation_endpoint": "https://ehr.example.org/revoke",
}


def _client(answer: Any) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url == FHIR + "/.well-known/smart-configuration"
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_the_document_is_read_once_for_both_clients() -> None:
    async with _client(DOC) as client:
        found = await discover(client, FHIR + "/")
        assert isinstance(found, SmartConfiguration)
        assert found.token_endpoint == DOC["token_endpoint"]
        assert found.authorization_endpoint == DOC["authorization_endpoint"]
        assert found.token_endpoint_auth_signing_algs == ("RS384", "ES384")
        assert await discover_token_endpoint(FHIR, "ES384", client) == DOC["token_endpoint"]
        launch = await launch_discover(client, FHIR)
        assert launch.token_endpoint == DOC["token_endpoint"]
        assert launch.openid_issuer == DOC["issuer"]


@pytest.mark.parametrize(("answer", "reason", "backend", "launch"), [
    (httpx.ConnectError("refused"), "unreachable", "failed: ConnectError", "EHR not reachable"),
    (httpx.Response(404), "status", "answered HTTP 404", "answered HTTP 404"),
    (httpx.Response(200, text="<html>"), "not-json", "did not return JSON", "is not JSON"),
    ([DOC], "no-token-endpoint", "names no token_endpoint", "lacks authorization"),
    ({"authorization_endpoint": "x"}, "no-token-endpoint", "names no token_endpoint",
     "lacks authorization"),
])
async def test_each_failure_is_told_by_each_client(answer: Any, reason: str, backend: str,
                                                   launch: str) -> None:
    async with _client(answer) as client:
        found = await discover(client, FHIR)
        assert isinstance(found, DiscoveryProblem) and found.reason == reason
        with pytest.raises(AuthError, match=backend):
            await discover_token_endpoint(FHIR, "RS384", client)
        # a JSON array used to escape the launch app as an AttributeError (a 500)
        with pytest.raises(LaunchError, match=launch) as caught:
            await launch_discover(client, FHIR)
        assert caught.value.http_status == 502


def _token(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


def test_token_responses_are_read_alike() -> None:
    good = {"access_token": "t", "token_type": "Bearer", "expires_in": "3600"}
    assert read_token_response(_token(good)) == good
    assert token_lifetime(good) == 3600.0
    assert token_lifetime({"expires_in": True}) == 300.0
    untyped = {"access_token": "t"}
    assert read_token_response(_token(untyped)) == untyped
    problem = read_token_response(_token(untyped), require_token_type=True)
    assert isinstance(problem, TokenProblem) and problem.reason == "not-bearer"
    mac = read_token_response(_token({"access_token": "t", "token_type": "mac"}))
    assert isinstance(mac, TokenProblem) and mac.token_type == "mac"
    none = read_token_response(_token({"token_type": "bearer"}))
    assert isinstance(none, TokenProblem) and none.reason == "no-access-token"
    text = read_token_response(httpx.Response(200, text="no"))
    assert isinstance(text, TokenProblem) and text.reason == "not-json"
