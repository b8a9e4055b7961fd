"""The history page (issue 20 item 12): each study's status, reason and referrer from the
ImagingStudy; a series the EHR shows without a body site (the mapping drops an unknown Body
Part Examined) shows the archive's raw term, which can be filtered on; a timeline legend; a
styled sign-out.  Against the real sandbox EHR and a small FHIR server; the gateway is a
stand-in whose archive answers series-level QIDO-RS."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sandbox_ehr import SandboxEhr

from tests.support.fake_fhir import FakeFhir
from tests.support.ports import free_port
from tests.support.servers import ServedApp
from tests.unit.smart_app.conftest import PATIENT, Browser
from tests.unit.smart_app.servers import imaging_study, smart_only_app, smart_settings

RAW_TERM = "KNEEE"  # a local BodyPartExamined value no table knows


def _study(n: int, **extra: Any) -> dict[str, Any]:
    study = imaging_study(n, PATIENT, year=2020 + n, modality="MR" if n else "CT")
    study.update(extra)
    return study


@pytest.fixture(scope="module")
def fhir() -> Iterator[FakeFhir]:
    fake = FakeFhir()
    fake.add({"resourceType": "Patient", "id": PATIENT, "name": [{"family": "Testperson"}]})
    unsited = _study(2, status="registered")
    unsited["series"] = [{"uid": "1.2.826.0.2.2.1", "modality": {"code": "MR"}},
                         {"uid": "1.2.826.0.2.2.2", "modality": {"code": "MR"}}]
    fake.studies = [
        _study(0, reasonCode=[{"text": "Persistent cough"},
                              {"coding": [{"system": "http://snomed.info/sct",
                                           "code": "233604007", "display": "Pneumonia"}]}],
               referrer={"reference": "Practitioner/dr1", "display": "Dr. Ada Referrer"}),
        _study(1, reasonReference=[{"reference": "Condition/c7", "display": "Knee pain"}],
               referrer={"reference": "Practitioner/dr2"}, status="cancelled"),
        unsited,
    ]
    with fake.serve():
        yield fake


@dataclass(frozen=True)
class Route:
    proxy: Any
    data_source_path: str = ""


class Archive:
    """Answers the series-level QIDO-RS of the unsited study (DICOM JSON, PS3.18 F.2)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def qido_json(self, path: str, params: list[tuple[str, str]]
                        ) -> list[dict[str, Any]]:
        self.asked.append(path)
        assert ("includefield", "00180015") in params
        return [{"0020000E": {"vr": "UI", "Value": ["1.2.826.0.2.2.1"]},
                 "00180015": {"vr": "CS", "Value": [RAW_TERM]}},
                {"0020000E": {"vr": "UI", "Value": ["1.2.826.0.2.2.2"]}}]


class StandInGateway:
    def __init__(self) -> None:
        self.archive = Archive()
        self.tokens = SimpleNamespace(session_alive=None)
        self.session_resolver: Any = None

        async def identifiers_of(patient: str) -> frozenset[tuple[str, str]]:
            return frozenset({("urn:p", patient)})

        async def holding(uid: str, ids: Any) -> Route | None:
            return Route(self.archive) if ("urn:p", PATIENT) in ids else None

        self.patients = SimpleNamespace(identifiers_of=identifiers_of)
        self.archives = SimpleNamespace(holding=holding)


@pytest.fixture
def history(ehr: SandboxEhr, tmp_path: Path) -> Iterator[Callable[..., tuple[str, Any]]]:
    started: list[ServedApp] = []

    def make(*, gateway: bool = True) -> tuple[str, Any]:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        ehr.register_client("imaging-app", redirect_uris=[f"{base}/smart/callback"],
                            launch_url=f"{base}/smart/launch")
        app = smart_only_app(smart_settings(tmp_path, port=port, iss=ehr.fhir_url))
        stand_in = StandInGateway() if gateway else None
        if stand_in is not None:
            app.state.gateway = stand_in
        started.append(ServedApp(app, port=port).start())
        return base, stand_in

    yield make
    for s in started:
        s.stop()


def _row(page: str, uid: str) -> str:
    found = re.search(rf'<tr data-testid="study" data-study-uid="{re.escape(uid)}">(.*?)</tr>',
                      page, re.S)
    assert found is not None, f"no row for {uid}"
    return found.group(1)


def _cell(row: str, name: str) -> str:
    found = re.search(rf'<td data-testid="{name}">(.*?)</td>', row, re.S)
    assert found is not None, f"no {name} cell"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


def test_each_study_shows_its_status_reason_and_referrer(
    ehr: SandboxEhr, history: Callable[..., tuple[str, Any]], browser: Browser
) -> None:
    history()
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT)).text
    first, second = _row(page, "1.2.826.0.1.0"), _row(page, "1.2.826.0.1.1")
    assert _cell(first, "reason") == "Persistent cough; Pneumonia"
    assert _cell(first, "referrer") == "Dr. Ada Referrer"
    assert 'data-testid="status">available<' in first
    assert _cell(second, "reason") == "Knee pain"
    assert _cell(second, "referrer") == "Practitioner/dr2"  # no display: the reference
    assert 'class="status cancelled" data-testid="status">cancelled<' in second


def test_an_unknown_body_part_shows_the_raw_term_and_can_be_filtered_on(
    ehr: SandboxEhr, history: Callable[..., tuple[str, Any]], browser: Browser
) -> None:
    base, gateway = history()
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT)).text
    assert _cell(_row(page, "1.2.826.0.1.2"), "body-site") == RAW_TERM
    assert '<span class="raw"' in _row(page, "1.2.826.0.1.2")
    assert gateway.archive.asked == ["studies/1.2.826.0.1.2/series"]  # only the unsited one
    assert f'name="bodysite" value="{RAW_TERM}"' in page
    filtered = browser.client.get(f"{base}/app/history", params={"bodysite": RAW_TERM}).text
    assert re.findall(r'data-study-uid="([^"]*)"', filtered) == ["1.2.826.0.1.2"]


def test_without_the_gateway_an_unknown_body_part_says_not_recorded(
    ehr: SandboxEhr, history: Callable[..., tuple[str, Any]], browser: Browser
) -> None:
    history(gateway=False)
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT)).text
    assert _cell(_row(page, "1.2.826.0.1.2"), "body-site") == "not recorded"


def test_the_timeline_has_a_legend_and_the_sign_out_is_a_styled_button_at_the_top(
    ehr: SandboxEhr, history: Callable[..., tuple[str, Any]], browser: Browser
) -> None:
    history()
    page = browser.go(ehr.launch_url_for("imaging-app", PATIENT)).text
    legend = re.search(r'<ul class="legend"[^>]*data-testid="legend">(.*?)</ul>', page, re.S)
    assert legend is not None
    assert re.findall(r'<span class="swatch (\w+)"', legend.group(1)) == ["CT", "MR"]
    assert "One mark per study" in legend.group(1)
    signout = page.index('class="signout" data-testid="logout"')
    assert signout < page.index('id="filters"')  # in the top bar, before the list
    assert ".signout button" in page  # styled, not the browser's default button
