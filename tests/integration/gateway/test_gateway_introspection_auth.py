"""How the gateway authenticates to the EHR's introspection endpoint (issue 12 item 11),
against the real sandbox EHR switched to demand a bearer token there (SMART App Launch 2.2,
Token Introspection: its example request carries ``Authorization: Bearer``) and real Orthanc.

* ``gateway.introspection_auth`` with a static bearer token, or with SMART Backend Services
  (client_credentials + private_key_jwt, the gateway fetching its own token), is accepted:
  a patient token reads its own studies, another patient's study is 403, ``/readyz`` is
  ready;
* when the endpoint refuses the gateway's own credentials (Basic where bearer is demanded,
  a bearer token it does not know, a Backend Services key it does not know) that is a
  configuration error, not an outage: 500 with a message saying so and no Retry-After, one
  error log line, ``/readyz`` failing with the reason; once the EHR accepts the gateway
  again, requests and ``/readyz`` recover.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_ehr import SandboxEhr

from bridge.auth.health import AUTH_HEALTH
from bridge.auth.keys import generate_signing_key, write_key_files
from tests.integration.gateway.conftest import GATEWAY_CLIENT, VIEWER_APP
from tests.integration.gateway.gateway_helpers import (
    World,
    ehr_patient_token,
    ehr_system_token,
    gateway_settings,
)
from tests.support.ports import free_port
from tests.support.servers import RunningGateway

#: the gateway as a confidential client of the EHR, for a bearer token of its own
RESOURCE_SERVER = ("imaging-gateway-rs", "gateway-rs-secret-" + "r" * 24)
#: the gateway as a SMART Backend Services client (private_key_jwt)
BACKEND = "imaging-gateway-backend"
CHECK = "gateway:token-validation"
REFUSED_LOG = "introspection refuses the gateway: configuration error"


@pytest.fixture(autouse=True)
def _forget_auth_failures() -> Iterator[None]:
    """The refusals recorded for ``/status`` (process-wide) do not outlive the test."""
    yield
    AUTH_HEALTH.clear()


@pytest.fixture(scope="module")
def bearer_ehr(ehr: SandboxEhr) -> SandboxEhr:
    """This module's sandbox, demanding a bearer token at /introspect."""
    ehr.register_client(RESOURCE_SERVER[0], secret=RESOURCE_SERVER[1])
    ehr.require_bearer_introspection()
    return ehr


@pytest.fixture(scope="module")
def patient_token(bearer_ehr: SandboxEhr, world: World) -> str:
    return ehr_patient_token(bearer_ehr, client_id=VIEWER_APP[0], secret=VIEWER_APP[1],
                             redirect_uri=VIEWER_APP[2], patient=world.a.fhir_id,
                             scope="patient/ImagingStudy.rs")


@contextlib.contextmanager
def _gateway(orthanc: Any, hapi: Any, ehr: SandboxEhr, tmp_path: Path, **auth: Any
             ) -> Iterator[RunningGateway]:
    settings = gateway_settings(orthanc, hapi, tmp_path, port=free_port(),
                                validation="introspection",
                                introspection_url=ehr.introspection_url,
                                audience=ehr.fhir_url, **auth)
    running = RunningGateway(settings).start()
    try:
        yield running
    finally:
        running.stop()


def _get(gw: RunningGateway, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{gw.dicomweb}/{path}", timeout=60,
                     headers={"Authorization": f"Bearer {token}",
                              "Accept": "application/dicom+json"})


def _readyz(gw: RunningGateway) -> tuple[int, str]:
    resp = httpx.get(f"{gw.url}/readyz", timeout=60)
    return resp.status_code, str(resp.json()["checks"].get(CHECK))


def _backend_key_file(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    key = generate_signing_key("ES384")
    files = write_key_files(key, tmp_path / "keys")
    return files.private_key, key.public_jwks()


def _serves_its_patient(gw: RunningGateway, world: World, token: str) -> None:
    own = _get(gw, "studies", token)
    assert own.status_code == 200, own.text
    assert {r["0020000D"]["Value"][0] for r in own.json()} == set(world.a.studies)
    other = _get(gw, f"studies/{world.b.studies[0]}/metadata", token)
    assert other.status_code == 403, other.text
    assert _readyz(gw) == (200, "ok")


def test_the_sandbox_refuses_basic_client_authentication_at_introspect_in_bearer_mode(
    bearer_ehr: SandboxEhr, patient_token: str
) -> None:
    bearer_ehr.register_client(GATEWAY_CLIENT[0], secret=GATEWAY_CLIENT[1])
    resp = httpx.post(bearer_ehr.introspection_url, data={"token": patient_token},
                      auth=GATEWAY_CLIENT, timeout=30)
    assert resp.status_code == 401 and "invalid_token" in resp.headers["www-authenticate"]


def test_a_static_bearer_token_authenticates_the_gateway_at_introspection(
    bearer_ehr: SandboxEhr, world: World, patient_token: str, orthanc: Any, hapi: Any,
    tmp_path: Path
) -> None:
    own_token = ehr_system_token(bearer_ehr, client_id=RESOURCE_SERVER[0],
                                 secret=RESOURCE_SERVER[1], scope="system/ImagingStudy.rs")
    with _gateway(orthanc, hapi, bearer_ehr, tmp_path,
                  introspection_auth={"kind": "bearer", "token": own_token}) as gw:
        _serves_its_patient(gw, world, patient_token)


def test_smart_backend_services_authenticates_the_gateway_at_introspection(
    bearer_ehr: SandboxEhr, world: World, patient_token: str, orthanc: Any, hapi: Any,
    tmp_path: Path
) -> None:
    key_file, jwks = _backend_key_file(tmp_path)
    bearer_ehr.register_client(BACKEND, jwks=jwks)
    with _gateway(orthanc, hapi, bearer_ehr, tmp_path, introspection_auth={
            "kind": "smart_backend", "client_id": BACKEND, "private_key_file": str(key_file),
            "token_url": bearer_ehr.token_url, "scope": "system/ImagingStudy.rs"}) as gw:
        _serves_its_patient(gw, world, patient_token)


def _refused_settings(kind: str, ehr: SandboxEhr, tmp_path: Path) -> dict[str, Any]:
    if kind == "basic":  # what the gateway offered before: Basic, where bearer is demanded
        ehr.register_client(GATEWAY_CLIENT[0], secret=GATEWAY_CLIENT[1])
        return {"client_id": GATEWAY_CLIENT[0], "client_secret": GATEWAY_CLIENT[1]}
    if kind == "bearer":  # a token the EHR never issued
        return {"introspection_auth": {"kind": "bearer", "token": "not-a-token-" + "x" * 30}}
    key_file, _ = _backend_key_file(tmp_path)  # a key the EHR does not know
    return {"introspection_auth": {
        "kind": "smart_backend", "client_id": BACKEND + "-unregistered",
        "private_key_file": str(key_file), "token_url": ehr.token_url}}


@pytest.mark.parametrize("kind", ["basic", "bearer", "smart_backend"])
def test_refused_gateway_credentials_are_a_configuration_error_not_an_outage(
    bearer_ehr: SandboxEhr, world: World, patient_token: str, orthanc: Any, hapi: Any,
    tmp_path: Path, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    config = _refused_settings(kind, bearer_ehr, tmp_path)
    caplog.set_level(logging.ERROR, logger="bridge")
    with _gateway(orthanc, hapi, bearer_ehr, tmp_path, **config) as gw:
        for _ in range(2):
            resp = _get(gw, "studies", patient_token)
            assert resp.status_code == 500, (resp.status_code, resp.headers, resp.text)
            assert "retry-after" not in resp.headers
            detail = resp.json()["detail"]
            assert "refuses the gateway" in detail and "retrying will not help" in detail
        status, check = _readyz(gw)
        assert status == 503 and check.startswith("gateway-misconfigured:"), check
        refusals = [r for r in caplog.records if r.getMessage() == REFUSED_LOG]
        assert len(refusals) == 1, [r.getMessage() for r in caplog.records]
        assert refusals[0].levelno == logging.ERROR
        assert getattr(refusals[0], "auth_kind", None) == kind
        assert patient_token not in caplog.text
        if kind == "basic":
            # the EHR accepts the gateway's client again: no restart needed
            bearer_ehr.require_bearer_introspection(False)
            try:
                assert _get(gw, "studies", patient_token).status_code == 200
                assert _readyz(gw) == (200, "ok")
            finally:
                bearer_ehr.require_bearer_introspection()
