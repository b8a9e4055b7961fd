"""Fixtures for the gateway tests: data for two patients, the sandbox EHR (SMART tokens,
RFC 7662 introspection, JWKS) and the bridge app with the gateway on a real port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_ehr import SandboxEhr

from tests.integration.gateway.gateway_helpers import World, build_world, gateway_settings
from tests.support.ports import free_port
from tests.support.servers import RunningGateway

GATEWAY_CLIENT = ("imaging-gateway", "gateway-secret-" + "g" * 24)
VIEWER_APP = ("viewer-app", "viewer-app-secret-" + "v" * 24, "http://127.0.0.1:1/callback")


@pytest.fixture(scope="module")
def world(orthanc: Any, hapi: Any) -> World:
    return build_world(orthanc, hapi)


@pytest.fixture(scope="module")
def ehr(hapi: Any) -> Iterator[SandboxEhr]:
    """The sandbox EHR (docker/local/sandbox_ehr) in front of the shared HAPI."""
    server = SandboxEhr(hapi.fhir_url, auto_approve=True).start()
    server.register_client(GATEWAY_CLIENT[0], secret=GATEWAY_CLIENT[1])
    server.register_client(VIEWER_APP[0], secret=VIEWER_APP[1], redirect_uris=[VIEWER_APP[2]])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def bridge(orthanc: Any, hapi: Any, ehr: SandboxEhr, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[RunningGateway]:
    """The app with the gateway validating EHR tokens by introspection at the sandbox."""
    port = free_port()
    tmp: Path = tmp_path_factory.mktemp("gateway")
    settings = gateway_settings(
        orthanc, hapi, tmp, port=port, validation="introspection",
        introspection_url=ehr.introspection_url, client_id=GATEWAY_CLIENT[0],
        client_secret=GATEWAY_CLIENT[1], audience=ehr.fhir_url,
        system_clients=["pacs-admin-tool"])
    running = RunningGateway(settings).start()
    try:
        yield running
    finally:
        running.stop()
