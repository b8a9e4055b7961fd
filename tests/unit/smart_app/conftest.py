"""A real local authorization server (the sandbox EHR) in front of a small FHIR server, and
the SMART app served on a real port, for the launch-flow tests."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from sandbox_ehr import SandboxEhr

from tests.support.fake_fhir import FakeFhir
from tests.support.ports import free_port
from tests.support.servers import ServedApp
from tests.unit.smart_app.servers import imaging_study, smart_only_app, smart_settings

PATIENT, OTHER = "p1", "p2"


@pytest.fixture(scope="module")
def fhir() -> Iterator[FakeFhir]:
    fake = FakeFhir()
    fake.add({
        "resourceType": "Patient", "id": PATIENT, "gender": "female", "birthDate": "1970-05-04",
        "name": [{"family": "Testperson", "given": ["Alba"]}],
        "identifier": [{"system": "urn:mrn", "value": "MRN-1",
                        "type": {"coding": [{"code": "MR"}]}}]})
    fake.add({"resourceType": "Patient", "id": OTHER, "name": [{"family": "Other"}]})
    fake.studies = ([imaging_study(n, PATIENT, year=2015 + n % 4,
                                   modality="CT" if n % 2 else "MR",
                                   site="Chest" if n % 3 else "Head") for n in range(7)]
                    + [imaging_study(100 + n, OTHER) for n in range(2)])
    with fake.serve():
        yield fake


@pytest.fixture
def ehr(fhir: FakeFhir) -> Iterator[SandboxEhr]:
    server = SandboxEhr(fhir.base).start()
    yield server
    server.stop()


class Browser:
    """httpx with a cookie jar that follows redirects by hand, recording every hop, and
    clicks the EHR's consent button (approve or deny) when it is shown."""

    def __init__(self, *, decision: str = "approve", patient: str | None = None) -> None:
        self.client = httpx.Client(timeout=30, follow_redirects=False)
        self.decision = decision
        self.patient = patient
        self.hops: list[str] = []

    def go(self, url: str, *, max_hops: int = 12, stop_at: str | None = None
           ) -> httpx.Response:
        resp = self.client.get(url)
        for _ in range(max_hops):
            self.hops.append(str(resp.request.url))
            if resp.status_code in (301, 302, 303, 307):
                if stop_at is not None and stop_at in resp.headers["location"]:
                    return resp
                resp = self.client.get(urljoin(str(resp.request.url), resp.headers["location"]))
                continue
            if resp.status_code == 200 and 'name="decision"' in resp.text:
                form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                                       resp.text))
                form = {k: html.unescape(v) for k, v in form.items()}
                action = html.unescape(re.search(r'action="([^"]+)"', resp.text).group(1))
                form["decision"] = self.decision
                if self.patient:
                    form["patient"] = self.patient
                resp = self.client.post(action, data=form)
                continue
            return resp
        raise AssertionError(f"too many redirects: {self.hops}")

    def close(self) -> None:
        self.client.close()


class RunningApp:
    def __init__(self, served: ServedApp, settings: Any) -> None:
        self.served = served
        self.url = served.url
        self.settings = settings

    @property
    def smart(self) -> Any:
        return self.served.server.config.app.state.smart


AppFactory = Callable[..., RunningApp]


@pytest.fixture
def make_app(ehr: SandboxEhr, tmp_path: Path) -> Iterator[AppFactory]:
    started: list[ServedApp] = []

    def make(*, client_secret: str | None = None, jwks: dict[str, Any] | None = None,
             client_id: str = "imaging-app", register: bool = True, **smart: Any
             ) -> RunningApp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        if register:
            ehr.register_client(client_id, redirect_uris=[f"{base}/smart/callback"],
                                secret=client_secret, jwks=jwks,
                                launch_url=f"{base}/smart/launch")
        settings = smart_settings(tmp_path, port=port, iss=ehr.fhir_url, client_id=client_id,
                                  client_secret=client_secret, **smart)
        served = ServedApp(smart_only_app(settings), port=port).start()
        started.append(served)
        return RunningApp(served, settings)

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    b = Browser()
    yield b
    b.close()
