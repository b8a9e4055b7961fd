"""``/readyz`` reads the FHIR server's CapabilityStatement and names what the sync needs but
the server does not declare (issue 20 item 8a): a server answering ``/metadata`` with an
empty Bundle used to pass.  Against the real HAPI (everything declared) and a stand-in FHIR
server on loopback that answers whatever the test gives it."""

from __future__ import annotations

import copy
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.api import create_app
from bridge.config import load_settings
from bridge.fhir.capabilities import Needs, missing_capabilities
from tests.integration.admin_helpers import ADMIN_HEADERS, with_admin
from tests.integration.fault_helpers import write_config
from tests.support.servers import app_client
from tests.support.settings import archive_entry


class _Metadata(http.server.BaseHTTPRequestHandler):
    body: bytes = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def fake_fhir() -> Iterator[tuple[str, type[_Metadata]]]:
    handler = type("Handler", (_Metadata,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def hapi_statement(hapi: Any) -> dict[str, Any]:
    resp = httpx.get(f"{hapi.fhir_url}/metadata", headers={"Accept": "application/fhir+json"},
                     timeout=60)
    resp.raise_for_status()
    statement: dict[str, Any] = resp.json()
    return statement


def test_hapi_declares_everything_the_sync_needs(hapi_statement: dict[str, Any]) -> None:
    assert missing_capabilities(hapi_statement, Needs(patient_create=True, delete=True)) == []


def test_a_statement_without_conditional_update_or_identifier_search_is_named(
    hapi_statement: dict[str, Any]
) -> None:
    statement = copy.deepcopy(hapi_statement)
    for res in statement["rest"][0]["resource"]:
        if res["type"] == "ImagingStudy":
            res["conditionalUpdate"] = False
        if res["type"] == "ServiceRequest":
            res["searchParam"] = [p for p in res["searchParam"] if p["name"] != "identifier"]
    statement["rest"][0]["interaction"] = []
    assert missing_capabilities(statement) == [
        "system interaction batch", "ImagingStudy conditionalUpdate",
        "ServiceRequest search parameter identifier"]


async def _readyz(settings: Any) -> httpx.Response:
    app = create_app(with_admin(settings), run_sync=False)
    async with app_client(app, headers=ADMIN_HEADERS) as client:
        return await client.get("/readyz")


@pytest.mark.parametrize("answer", [
    {"resourceType": "Bundle", "type": "searchset", "total": 0},
    "no-conditional-update",
])
async def test_readyz_fails_naming_what_the_fhir_server_lacks(
    answer: Any, orthanc: Any, hapi_statement: dict[str, Any], ns: Any, tmp_path: Path,
    fake_fhir: tuple[str, type[_Metadata]],
) -> None:
    url, handler = fake_fhir
    if answer == "no-conditional-update":
        answer = copy.deepcopy(hapi_statement)
        for res in answer["rest"][0]["resource"]:
            if res["type"] == "ImagingStudy":
                res.pop("conditionalUpdate", None)
    handler.body = json.dumps(answer).encode()
    settings = load_settings(write_config(
        tmp_path / "bridge.yaml", archives=[archive_entry(orthanc, ns.name("arc"))],
        fhir_url=url, state_url=f"sqlite:///{tmp_path / 'state.db'}"))
    resp = await _readyz(settings)
    assert resp.status_code == 503, resp.text
    check = resp.json()["checks"]["fhir"]
    if isinstance(answer, dict) and answer.get("resourceType") == "Bundle":
        assert "not a CapabilityStatement (got Bundle)" in check
    else:
        assert "ImagingStudy conditionalUpdate" in check
