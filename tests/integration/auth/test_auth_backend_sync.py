"""The sync writes to HAPI through the sandbox EHR with SMART Backend Services (issue 6)."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import devstack
import httpx
import pytest
from joserfc import jwt
from sandbox_ehr import SandboxEhr

from bridge.api.app import create_app
from bridge.auth.health import AUTH_HEALTH
from bridge.auth.keys import generate_signing_key, load_signing_key, write_key_files
from bridge.auth.smart_backend import (
    ASSERTION_TYPE,
    DEFAULT_BACKEND_SCOPE,
    sign_client_assertion,
)
from bridge.config import AuthSettings, FhirSettings
from bridge.errors import AuthError
from bridge.fhir.client import FhirClient
from bridge.sync.backfill import mark_history
from bridge.sync.runner import DrainStats
from tests.integration.admin_helpers import ADMIN_HEADERS, with_admin
from tests.integration.sync_helpers import load_and_seed, study_by_uid
from tests.support.servers import app_client
from tests.support.wiring import sync_context


@pytest.fixture(scope="module")
def orthanc(own_orthanc: devstack.Orthanc) -> devstack.Orthanc:
    """This module's own Orthanc: its tests backfill the whole archive over the studies'
    dates and expect no failure, which the shared archive cannot promise (other tests
    store broken or unseeded studies in it on purpose)."""
    return own_orthanc


async def _backfill(settings: Any, start: Any, end: Any) -> Any:
    async with sync_context(settings) as ctx:
        await mark_history(ctx.archives["orthanc"], ctx.store, start=start, end=end,
                           window_days=3650)
        return await ctx.runner.drain()


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_backfill_pushes_through_the_sandbox_with_backend_services(
    alg: str, orthanc: Any, hapi: Any, ns: Any, sandbox_ehr: SandboxEhr,
    backend_settings: Any, tmp_path: Path,
) -> None:
    loaded = load_and_seed(orthanc, hapi, ns, count=3)
    settings = backend_settings(alg)
    start, end = loaded.dates
    stats = await _backfill(settings, start, end)
    assert stats.failed == 0
    assert stats.synced >= len(loaded.truths)
    for truth in loaded.truths:
        assert len(study_by_uid(hapi, truth.study_uid)) == 1
    client_id = settings.fhir.auth.client_id
    issued = [r for r in sandbox_ehr.store.access.values() if r.client_id == client_id]
    assert issued, "the sandbox issued no token to the bridge"
    assert all(r.scope.split() == DEFAULT_BACKEND_SCOPE.split() for r in issued)


async def _checks(settings: Any) -> tuple[httpx.Response, dict[str, Any]]:
    """``/readyz`` and ``/status`` of a bridge app built from ``settings``."""
    app = create_app(with_admin(settings), run_sync=False)
    async with app_client(app, base_url="http://bridge", headers=ADMIN_HEADERS) as client:
        ready = await client.get("/readyz")
        status = (await client.get("/status")).json()
    return ready, status


async def test_wrong_key_gives_invalid_client_in_readyz_and_status_then_right_key_recovers(
    orthanc: Any, hapi: Any, ns: Any, sandbox_ehr: SandboxEhr, backend_settings: Any,
    tmp_path: Path,
) -> None:
    AUTH_HEALTH.clear()
    good = backend_settings("ES384")
    registered = load_signing_key(good.fhir.auth.private_key_file)
    # same client and kid, but a key the EHR does not know: the signature cannot match
    other = write_key_files(generate_signing_key("ES384"), tmp_path / "wrong-key")
    bad = good.model_copy(deep=True)
    bad.fhir.auth = AuthSettings(kind="smart_backend", client_id=good.fhir.auth.client_id,
                                 private_key_file=other.private_key, key_id=registered.kid)

    ready, status = await _checks(bad)
    assert ready.status_code == 503
    fhir_check = ready.json()["checks"]["fhir"]
    assert fhir_check.startswith("auth: ")
    assert "invalid_client: signature does not match the registered key" in fhir_check
    assert status["last_auth_error"]["remote"] == sandbox_ehr.fhir_url
    assert "invalid_client" in status["last_auth_error"]["message"]

    ready, status = await _checks(good)
    assert ready.status_code == 200, ready.text
    assert status["last_auth_error"] is None
    loaded = load_and_seed(orthanc, hapi, ns, count=2)
    stats = await _backfill(good, *loaded.dates)
    assert stats.failed == 0
    for truth in loaded.truths:
        assert len(study_by_uid(hapi, truth.study_uid)) == 1


async def test_token_expiring_mid_backfill_is_renewed_and_nothing_is_lost(
    orthanc: Any, hapi: Any, ns: Any, sandbox_ehr: SandboxEhr, backend_settings: Any,
) -> None:
    loaded = load_and_seed(orthanc, hapi, ns, count=6)
    settings = backend_settings("RS384", claim_batch=2)
    settings.fhir.batch_size = 1
    sandbox_ehr.set_token_lifetime(2)

    # After every batch the sandbox expires every live token, so the next request meets a
    # dead one: a condition, not a race with a timer (the six studies of this module's own
    # archive drain faster than any timer would fire).
    killed = 0
    async with sync_context(settings) as ctx:
        await mark_history(ctx.archives["orthanc"], ctx.store, start=loaded.dates[0],
                           end=loaded.dates[1], window_days=3650)
        stats = DrainStats()
        while await ctx.runner.run_once(stats):
            killed += sandbox_ehr.expire_tokens()
    assert stats.failed == 0
    for truth in loaded.truths:
        assert len(study_by_uid(hapi, truth.study_uid)) == 1, truth.study_uid
    issued = [r for r in sandbox_ehr.store.access.values()
              if r.client_id == settings.fhir.auth.client_id]
    assert len(issued) >= 2, "the token was never renewed"
    assert killed >= 1
    # requests did meet dead tokens (401), and were retried with a fresh one
    assert sandbox_ehr.store.refused_tokens >= 1


async def test_reused_assertion_jti_is_rejected_by_the_sandbox(
    sandbox_ehr: SandboxEhr, backend_settings: Any,
) -> None:
    settings = backend_settings("RS384")
    key = load_signing_key(settings.fhir.auth.private_key_file)
    assertion = sign_client_assertion(key, client_id=settings.fhir.auth.client_id,
                                      token_endpoint=sandbox_ehr.token_url)
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs",
            "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}
    async with httpx.AsyncClient() as client:
        first = await client.post(sandbox_ehr.token_url, data=form)
        again = await client.post(sandbox_ehr.token_url, data=form)
    assert first.status_code == 200, first.text
    assert again.status_code in (400, 401)
    assert again.json()["error"] == "invalid_client"
    assert "JWT ID" in again.json()["error_description"]


async def test_each_token_request_signs_a_new_assertion_with_exp_within_five_minutes(
    sandbox_ehr: SandboxEhr, backend_settings: Any,
) -> None:
    settings = backend_settings("ES384")
    key = load_signing_key(settings.fhir.auth.private_key_file)
    a = sign_client_assertion(key, client_id="c", token_endpoint=sandbox_ehr.token_url)
    b = sign_client_assertion(key, client_id="c", token_endpoint=sandbox_ehr.token_url)
    ca, cb = (jwt.decode(x, key.key, algorithms=["ES384"]) for x in (a, b))
    assert ca.header["kid"] == key.kid and ca.header["typ"] == "JWT"
    assert ca.claims["jti"] != cb.claims["jti"]
    assert ca.claims["iss"] == ca.claims["sub"] == "c"
    assert ca.claims["aud"] == sandbox_ehr.token_url
    assert 0 < ca.claims["exp"] - time.time() <= 300


async def test_no_token_secret_or_assertion_reaches_the_logs(
    orthanc: Any, hapi: Any, ns: Any, sandbox_ehr: SandboxEhr, backend_settings: Any,
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    loaded = load_and_seed(orthanc, hapi, ns, count=2)
    settings = backend_settings("RS384")
    sandbox_ehr.set_token_lifetime(2)
    stats = await _backfill(settings, *loaded.dates)
    assert stats.failed == 0
    # and a client secret, refused once, then accepted
    secret = "s3cr3t-" + ns.token
    sandbox_ehr.register_client(ns.name("cc"), secret=secret,
                                allowed_scopes=DEFAULT_BACKEND_SCOPE.split())
    wrong = _secret_settings(settings, sandbox_ehr, ns.name("cc"), "not-the-" + secret)
    async with FhirClient(wrong) as fhir:
        with pytest.raises(AuthError, match="invalid_client"):
            await fhir.search("Patient", {"_count": "1"})
    async with FhirClient(_secret_settings(settings, sandbox_ehr, ns.name("cc"), secret)
                          ) as fhir:
        await fhir.search("Patient", {"_count": "1"})

    text = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    assert len(caplog.records) > 0
    assert not JWT_PATTERN.search(text), "a JWT (token or assertion) was logged"
    assert secret not in text
    assert "PRIVATE KEY" not in text


JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.")


def _secret_settings(settings: Any, ehr: SandboxEhr, client_id: str, secret: str
                     ) -> FhirSettings:
    return FhirSettings(base_url=ehr.fhir_url, auth=AuthSettings(
        kind="client_credentials", token_url=ehr.token_url, client_id=client_id,
        client_secret=secret, scope=DEFAULT_BACKEND_SCOPE))


async def test_client_credentials_with_a_secret_syncs_through_the_sandbox(
    orthanc: Any, hapi: Any, ns: Any, sandbox_ehr: SandboxEhr, backend_settings: Any,
) -> None:
    loaded = load_and_seed(orthanc, hapi, ns, count=2)
    settings = backend_settings("RS384")
    secret = "cc-" + ns.token + "-x9"
    sandbox_ehr.register_client(ns.name("cc"), secret=secret,
                                allowed_scopes=DEFAULT_BACKEND_SCOPE.split())
    settings.fhir = _secret_settings(settings, sandbox_ehr, ns.name("cc"), secret)
    stats = await _backfill(settings, *loaded.dates)
    assert stats.failed == 0
    for truth in loaded.truths:
        assert len(study_by_uid(hapi, truth.study_uid)) == 1
