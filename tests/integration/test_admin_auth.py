"""The admin API is closed to anyone without ``api.admin_auth`` credentials, and can have a
listener of its own (issue 12 item 6).

``GET /studies/{uid}`` confirmed a study's existence and its FHIR id to anyone; ``/status``
and ``/metrics`` were open, on the listener the patient-facing gateway and app share.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bridge.api import create_app
from bridge.config import Settings, load_settings
from tests.integration.admin_helpers import ADMIN_HEADERS, ADMIN_TOKEN
from tests.integration.fault_helpers import write_config
from tests.integration.serve_helpers import ServeProcess, serve_config
from tests.support.ports import free_port
from tests.support.servers import app_client
from tests.support.settings import archive_entry

OPS_PASSWORD = "ops-password-0123456789"
ADMIN_PATHS = ("/status", "/metrics", "/studies/1.2.3")


def _settings(orthanc: Any, hapi: Any, ns: Any, tmp_path: Path, admin_auth: Any) -> Settings:
    path = write_config(tmp_path / "bridge.yaml",
                        archives=[archive_entry(orthanc, ns.name("arc"))],
                        fhir_url=hapi.fhir_url, state_url=f"sqlite:///{tmp_path / 'state.db'}")
    config = json.loads(path.read_text())
    if admin_auth is not None:
        config["api"] = {"admin_auth": admin_auth}
    path.write_text(json.dumps(config))
    return load_settings(path)


@pytest.fixture
async def client_of() -> AsyncIterator[Callable[[Settings], Any]]:
    """``await client_of(settings)``: the app (lifespan entered) and an httpx client on it."""
    async with contextlib.AsyncExitStack() as stack:

        async def open_(settings: Settings) -> tuple[FastAPI, httpx.AsyncClient]:
            app = create_app(settings, run_sync=False)
            return app, await stack.enter_async_context(app_client(app))

        yield open_


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_admin_routes_answer_only_configured_credentials_and_say_nothing_else(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path, client_of: Any
) -> None:
    settings = _settings(orthanc, hapi, ns, tmp_path, {
        "bearer_tokens": [ADMIN_TOKEN], "basic_users": {"ops": OPS_PASSWORD}})
    app, client = await client_of(settings)
    known, unknown = ns.uid(), ns.uid()
    app.state.ctx.store.mark_due(ns.name("arc"), known, reason="manual")

    for headers in ({}, {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
                    _basic("ops", OPS_PASSWORD + "x"), _basic("nobody", OPS_PASSWORD),
                    {"Authorization": ADMIN_TOKEN}, {"Authorization": "Bearer"}):
        for path in (*ADMIN_PATHS, f"/studies/{known}", f"/studies/{unknown}"):
            resp = await client.get(path, headers=headers)
            assert resp.status_code == 401, (path, headers, resp.text)
            challenge = resp.headers["www-authenticate"]
            assert 'Basic realm="admin"' in challenge and 'Bearer realm="admin"' in challenge
            # a study that exists and one that does not get the very same answer
            assert resp.json() == {"detail": "authentication required (Bearer token or "
                                             "Basic credentials of api.admin_auth)"}
    wrong = await client.get("/status", headers={"Authorization": "Bearer wrong-token"})
    assert 'error="invalid_token"' in wrong.headers["www-authenticate"]  # RFC 6750 3.1

    for headers in (ADMIN_HEADERS, _basic("ops", OPS_PASSWORD)):
        assert (await client.get("/status", headers=headers)).json()["studies"]["due"] == 1
        assert (await client.get("/metrics", headers=headers)).status_code == 200
        assert (await client.get(f"/studies/{known}", headers=headers)).status_code == 200
        assert (await client.get(f"/studies/{unknown}", headers=headers)).status_code == 404
    # the probes stay open
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_without_admin_credentials_the_admin_routes_stay_closed_and_start_up_says_so(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path, client_of: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.api.admin_auth")
    _, client = await client_of(_settings(orthanc, hapi, ns, tmp_path, None))
    assert [r.getMessage() for r in caplog.records if r.name == "bridge.api.admin_auth"] == [
        "admin API closed: api.admin_auth has no credentials; /status, /metrics and "
        "/studies/{uid} answer 401"]
    for path in ADMIN_PATHS:
        resp = await client.get(path, headers=ADMIN_HEADERS)
        assert resp.status_code == 401
        assert resp.json()["detail"] == ("the admin API has no credentials configured "
                                         "(api.admin_auth)")


async def test_admin_auth_none_opens_the_admin_routes_with_a_loud_warning(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path, client_of: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.api.admin_auth")
    _, client = await client_of(_settings(orthanc, hapi, ns, tmp_path, "none"))
    [warning] = [r for r in caplog.records if r.name == "bridge.api.admin_auth"]
    assert warning.levelno == logging.WARNING
    assert warning.getMessage().startswith("ADMIN API UNAUTHENTICATED: api.admin_auth is none")
    assert (await client.get("/status")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


def test_serve_puts_the_admin_routes_on_their_own_listener(
    orthanc_factory: Callable[..., Any], hapi: Any, ns: Any, tmp_path: Path
) -> None:
    config = serve_config(orthanc_factory(), hapi, tmp_path, ns,
                          realtime={"webhook_secret": "admin-listener-webhook-0123456789",
                                    "stow_auth": {"bearer_tokens": ["stow-token-0123456789"]},
                                    "reconcile_interval": 0})
    config["api"].update(admin_port=free_port(),
                         admin_auth={"bearer_tokens": [ADMIN_TOKEN]})
    with ServeProcess(config, tmp_path) as bridge, httpx.Client(timeout=30) as client:
        public, admin = bridge.url, bridge.admin_url
        assert public != admin
        for base in (public, admin):  # probes on both
            assert client.get(f"{base}/healthz").status_code == 200
            assert client.get(f"{base}/readyz").status_code == 200, client.get(
                f"{base}/readyz").text
        for path in ADMIN_PATHS:  # not on the public listener, credentials or not
            assert client.get(f"{public}{path}", headers=ADMIN_HEADERS).status_code == 404
            assert client.get(f"{admin}{path}").status_code == 401
        assert client.get(f"{admin}/status", headers=ADMIN_HEADERS).json()["queue_depth"] == 0
        assert client.get(f"{admin}/metrics", headers=ADMIN_HEADERS).status_code == 200
        # the public routes are on the public listener only
        assert client.post(f"{public}/notifications", content=b"{}").status_code == 401
        assert client.post(f"{admin}/notifications", content=b"{}").status_code == 404
        assert client.post(f"{public}/dicom-web/studies", content=b"").status_code == 401
        assert client.post(f"{admin}/dicom-web/studies", content=b"").status_code == 404
        status = bridge.stop()
    assert status == 0, bridge.output()  # SIGTERM: both listeners stopped gracefully
