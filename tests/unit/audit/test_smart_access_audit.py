"""The SMART app's access decisions reach the audit trail and the launch metrics (issue 20
items 9 and 10): launch, history page, viewer open; refusals with their reason.  Against a
real authorization server (the sandbox EHR) and the app served on a real port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sandbox_ehr import SandboxEhr

from bridge.audit import Action, AuditRecord, AuditTrail, Outcome, session_ref
from bridge.audit.smart import SmartAccessObserver
from smart_app.sessions import COOKIE_NAME, session_id
from tests.support.fake_fhir import FakeFhir
from tests.support.ports import free_port
from tests.support.servers import ServedApp
from tests.support.wiring import smart_router
from tests.unit.smart_app.conftest import Browser
from tests.unit.smart_app.servers import imaging_study, smart_settings

PATIENT = "p-audit"


class KeptTrail(AuditTrail):
    """The trail, keeping what it was given (no audit server: log lines only)."""

    def __init__(self) -> None:
        super().__init__(sink=None, aggregate_seconds=0)
        self.kept: list[AuditRecord] = []

    def record(self, record: AuditRecord) -> bool:
        self.kept.append(record)
        return super().record(record)


@pytest.fixture(scope="module")
def fhir() -> Iterator[FakeFhir]:
    fake = FakeFhir()
    fake.add({"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Audit"}]})
    fake.studies = [imaging_study(n, PATIENT) for n in range(2)]
    with fake.serve():
        yield fake


@pytest.fixture
def running(fhir: FakeFhir, tmp_path: Path
            ) -> Iterator[tuple[SandboxEhr, str, KeptTrail, FastAPI]]:
    ehr = SandboxEhr(fhir.base).start()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    ehr.register_client("audit-app", redirect_uris=[f"{base}/smart/callback"],
                        launch_url=f"{base}/smart/launch")
    settings = smart_settings(tmp_path, port=port, iss=ehr.fhir_url, client_id="audit-app")
    trail = KeptTrail()
    app = FastAPI()
    app.include_router(smart_router(settings))
    app.add_middleware(SmartAccessObserver, trail=trail, client_id="audit-app")
    served = ServedApp(app, port=port).start()
    try:
        yield ehr, base, trail, app
    finally:
        served.stop()
        ehr.stop()


def _launches(step: str, outcome: str, reason: str) -> float:
    return REGISTRY.get_sample_value("bridge_smart_launches_total",
                                     {"step": step, "outcome": outcome, "reason": reason}) or 0


def test_launch_history_and_viewer_open_are_recorded_with_the_sessions_user_and_patient(
    running: tuple[SandboxEhr, str, KeptTrail, FastAPI],
) -> None:
    ehr, base, trail, app = running
    started = _launches("start", "permitted", "ok")
    launched = _launches("callback", "permitted", "ok")
    browser = Browser()
    try:
        page = browser.go(ehr.launch_url_for("audit-app", PATIENT))
        assert page.status_code == 200 and str(page.url).endswith("/app/history")
        uid = "1.2.826.0.1.3680043.8.498.1"
        opened = browser.client.get(f"{base}/app/viewer", params={"StudyInstanceUIDs": uid})
        assert opened.status_code == 303
        app_session = app.state.smart.store.get(browser.client.cookies.get(COOKIE_NAME))
        assert app_session is not None
    finally:
        browser.close()
    launch, history, viewer = trail.kept
    assert (launch.action, history.action, viewer.action) == (
        Action.LAUNCH, Action.HISTORY, Action.VIEWER)
    for record in trail.kept:
        assert record.outcome is Outcome.PERMITTED and record.source == "smart-app"
        assert record.patient == PATIENT
        assert record.actor.client_id == "audit-app"
        assert record.actor.user is not None and record.actor.user.startswith("Practitioner/")
    assert viewer.studies == (uid,)
    # one session reference for the launch, the pages and (as the viewer token's sid) the
    # gateway's records of that token
    sid = session_id(app_session)
    assert {r.actor.session for r in trail.kept} == {session_ref(sid)}
    assert _launches("start", "permitted", "ok") - started == 1
    assert _launches("callback", "permitted", "ok") - launched == 1


def test_refused_launch_and_page_without_session_are_recorded_with_the_reason(
    running: tuple[SandboxEhr, str, KeptTrail, FastAPI],
) -> None:
    ehr, base, trail, _app = running
    denied = _launches("callback", "refused", "access-denied")
    browser = Browser(decision="deny")
    try:
        assert browser.go(ehr.launch_url_for("audit-app", PATIENT)).status_code == 403
        assert browser.client.get(f"{base}/app/history").status_code == 401
    finally:
        browser.close()
    launch, history = trail.kept
    assert launch.action is Action.LAUNCH and launch.outcome is Outcome.REFUSED
    assert launch.reason == "access-denied" and launch.patient is None
    assert history.action is Action.HISTORY and history.reason == "not-signed-in"
    assert _launches("callback", "refused", "access-denied") - denied == 1
