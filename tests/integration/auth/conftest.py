"""Fixtures for the auth integration tests: a sandbox EHR in front of the real HAPI server,
and builders for bridge settings that sync through it with SMART Backend Services."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_ehr import SandboxEhr

from bridge.auth.keys import SigningAlg, generate_signing_key, write_key_files
from bridge.auth.smart_backend import DEFAULT_BACKEND_SCOPE
from bridge.config import AuthSettings, FhirSettings, Settings
from tests.integration.auth.smart_launch import REDIRECT
from tests.integration.sync_helpers import bridge_settings


@pytest.fixture
def sandbox_ehr(hapi: Any) -> Iterator[SandboxEhr]:
    """A fresh sandbox EHR (own clients, tokens and switches) proxying the shared HAPI."""
    ehr = SandboxEhr(hapi.fhir_url).start()
    try:
        yield ehr
    finally:
        ehr.stop()


@pytest.fixture
def app_client(sandbox_ehr: SandboxEhr, ns: Any) -> str:
    """A public SMART app client (PKCE only) registered with the sandbox."""
    client_id = ns.name("viewer")
    sandbox_ehr.register_client(client_id, redirect_uris=[REDIRECT],
                                launch_url="http://app.test/launch")
    return client_id


@pytest.fixture
def patient_id(hapi: Any, ns: Any) -> str:
    """A new Patient in HAPI; its id."""
    with httpx.Client(timeout=60) as client:
        resp = client.post(f"{hapi.fhir_url}/Patient", json={
            "resourceType": "Patient",
            "identifier": [{"system": "urn:test", "value": ns.patient_id()}]})
        resp.raise_for_status()
        return str(resp.json()["id"])


BackendSettings = Callable[..., Settings]


@pytest.fixture
def backend_settings(orthanc: Any, hapi: Any, sandbox_ehr: SandboxEhr, tmp_path: Path,
                     ns: Any) -> BackendSettings:
    """``make(alg, register=True, key_dir=None)``: settings whose FHIR server is the sandbox,
    authenticated with SMART Backend Services; the key is registered with the sandbox unless
    ``register`` is False (then a different, unregistered key is configured)."""

    def make(alg: SigningAlg = "RS384", *, register: bool = True, client_id: str | None = None,
             key_dir: Path | None = None, **sync: Any) -> Settings:
        client_id = client_id or ns.name("bridge-sync")
        key_dir = key_dir or tmp_path / f"keys-{alg}"
        files = write_key_files(generate_signing_key(alg), key_dir)
        if register:
            sandbox_ehr.register_client(
                client_id, jwks=_read_json(files.jwks),
                allowed_scopes=DEFAULT_BACKEND_SCOPE.split())
        settings = bridge_settings(orthanc, hapi, tmp_path, **sync)
        settings.fhir = FhirSettings(
            base_url=sandbox_ehr.fhir_url, batch_size=settings.fhir.batch_size,
            auth=AuthSettings(kind="smart_backend", client_id=client_id,
                              private_key_file=files.private_key),
        )
        return settings

    return make


def _read_json(path: Path) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(path.read_text())
    return data
