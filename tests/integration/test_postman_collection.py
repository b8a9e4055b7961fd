"""The Postman collection (docker/postman) run by newman against the real stack (issue 13).

Two patients' studies in Orthanc and their Patients in HAPI; the bridge (gateway with
token introspection at the sandbox EHR, STOW proxy, signed notifications, an admin user)
on a real port, after a sync with its own settings (so the ImagingStudies carry the
gateway's and IID's Endpoints); a SMART patient token for patient A from the sandbox EHR.
newman runs every request of the collection; it must exit 0 with every assertion passed,
and the count of assertions is checked so that a request silently dropped or a test
script that never runs is noticed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sandbox_ehr import SandboxEhr

from bridge.config import (
    GatewaySettings,
    InboundAuthSettings,
    RealtimeSettings,
)
from samples.generator import SamplePatient, generate_studies
from samples.load import load_studies
from samples.real_images import real_studies
from samples.seed_ehr import seed_ehr
from tests.integration.sync_helpers import bridge_settings, fhir_search, study_by_uid
from tests.support.ports import free_port
from tests.support.servers import RunningGateway
from tests.support.wiring import sync_context

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTMAN = REPO_ROOT / "docker" / "postman"
sys.path.insert(0, str(POSTMAN))

import postman_env  # noqa: E402

GATEWAY_CLIENT = ("imaging-gateway", "gateway-secret-" + "p" * 24)
NEWMAN_TIMEOUT = 300  # s; the run takes a few seconds


@dataclass
class Stack:
    app: RunningGateway
    ehr: SandboxEhr
    patient: SamplePatient
    patient_fhir_id: str
    other_study_uid: str
    admin_password: str
    stow_token: str
    webhook_secret: str


def _newman() -> str:
    out = subprocess.run(["bash", str(POSTMAN / "fetch_newman.sh")], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def stack(orthanc: Any, hapi: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    token = uuid.uuid4().hex[:5].upper()
    seed = int(token, 16)
    studies = list(generate_studies(4, seed=seed, profile="small", patients=2,
                                    id_prefix=token, every_patient=True))
    a, b = studies[0].patient, studies[1].patient
    # patient A also gets a real image with a coded body part (HEAD): the body-site search
    real = real_studies([a], seed=seed, id_prefix=token, keys=["mr-multiframe-jpegls"])
    loaded = load_studies([*studies, *real], url=orthanc.dicomweb_url,
                          username=orthanc.username, password=orthanc.password)
    assert loaded.ok, loaded.errors
    seed_ehr([s.truth for s in [*studies, *real]], fhir_url=hapi.fhir_url,
             patients_fraction=1.0, seed=seed)
    ids = {}
    for p in (a, b):
        found = fhir_search(hapi, "Patient",
                            {"identifier": f"{p.identifier_system}|{p.patient_id}"})
        assert len(found) == 1
        ids[p.patient_id, p.issuer] = str(found[0]["id"])

    ehr = SandboxEhr(hapi.fhir_url).start()
    ehr.register_client(GATEWAY_CLIENT[0], secret=GATEWAY_CLIENT[1])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    admin_password, stow_token = secrets.token_urlsafe(18), secrets.token_urlsafe(24)
    webhook_secret = secrets.token_urlsafe(24)
    settings = bridge_settings(orthanc, hapi, tmp_path_factory.mktemp("bridge"))
    settings.api.port = port
    settings.api.admin_auth = InboundAuthSettings(basic_users={"admin": admin_password})
    settings.gateway = GatewaySettings(
        enabled=True, public_url=f"{base}/dicom-web", viewer_token_secret="viewer-" + "v" * 40,
        introspection_url=ehr.introspection_url, client_id=GATEWAY_CLIENT[0],
        client_secret=GATEWAY_CLIENT[1], audience=ehr.fhir_url,
        viewer_url_template="/app/viewer?StudyInstanceUIDs={study_uids}")
    settings.realtime = RealtimeSettings(
        webhook_secret=webhook_secret, stow_auth=InboundAuthSettings(bearer_tokens=[stow_token]))

    async def sync() -> Any:  # the app's own settings and state store: gateway Endpoints
        async with sync_context(settings) as ctx:
            ctx.store.mark_many_due("orthanc", [(s.study_uid, None) for s in [*studies, *real]],
                                    reason="manual")
            return await ctx.runner.drain()

    stats = asyncio.run(sync())
    assert stats.failed == stats.retried == 0
    for s in [*studies, *real]:
        assert len(study_by_uid(hapi, s.study_uid)) == 1
    app = RunningGateway(settings).start()
    other = next(s.study_uid for s in studies if s.patient == b)
    try:
        yield Stack(app, ehr, a, ids[a.patient_id, a.issuer], other, admin_password,
                    stow_token, webhook_secret)
    finally:
        app.stop()
        ehr.stop()


def _assertions_in_collection() -> int:
    collection = json.loads(postman_env.COLLECTION.read_text("utf-8"))
    count = 0

    def walk(items: list[dict[str, Any]]) -> None:
        nonlocal count
        for it in items:
            if "item" in it:
                walk(it["item"])
                continue
            for event in it.get("event", []):
                if event["listen"] == "test":
                    count += sum(line.count("pm.test(") for line in event["script"]["exec"])

    walk(collection["item"])
    return count


def test_newman_runs_the_collection_green_against_the_real_stack(
    stack: Stack, tmp_path: Path
) -> None:
    newman = _newman()
    prepared = postman_env.prepare(
        tmp_path, bridge=stack.app.url, ehr=stack.ehr, patient=stack.patient,
        patient_fhir_id=stack.patient_fhir_id, other_study_uid=stack.other_study_uid,
        admin_user="admin", admin_password=stack.admin_password, stow_token=stack.stow_token,
        webhook_secret=stack.webhook_secret)
    report = tmp_path / "newman-report.json"
    started = time.monotonic()
    run = subprocess.run(
        [newman, "run", str(postman_env.COLLECTION), "-e", str(prepared.environment),
         "--working-dir", str(prepared.workdir), "--reporters", "cli,json",
         "--reporter-json-export", str(report), "--color", "off", "--timeout-request", "60000"],
        capture_output=True, text=True, timeout=NEWMAN_TIMEOUT)
    seconds = time.monotonic() - started
    print(run.stdout[-6000:])
    stats = json.loads(report.read_text("utf-8"))["run"]["stats"]
    expected = _assertions_in_collection()
    failures = [f"{f['source']['name']}: {f['error']['message']}"
                for f in json.loads(report.read_text("utf-8"))["run"]["failures"]]
    assert run.returncode == 0, failures or run.stderr[-2000:]
    assert stats["assertions"]["failed"] == 0 and stats["testScripts"]["failed"] == 0
    assert stats["assertions"]["total"] == expected, (stats["assertions"], expected)
    assert stats["requests"]["failed"] == 0
    print(f"newman: {stats['requests']['total']} requests, "
          f"{stats['assertions']['total'] - stats['assertions']['failed']}/"
          f"{stats['assertions']['total']} assertions passed in {seconds:.1f} s")
