"""IHE Invoke Image Display (RAD-106) against the real archive and EHR (issue 8)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.requests import Request

from bridge.gateway.tokens import TokenInfo
from tests.integration.gateway.gateway_helpers import World
from tests.support.servers import RunningGateway

IID = "/IHEInvokeImageDisplay"


@pytest.fixture(scope="module")
def session_a(bridge: RunningGateway, world: World) -> str:
    """A fake SMART launch session for patient A, resolved through the IID session hook."""
    sessions = {"sess-a": TokenInfo(kind="smart", scopes=frozenset({"patient/ImagingStudy.rs"}),
                                    patient=world.a.fhir_id, client_id="smart-app",
                                    expires_at=None)}

    async def resolve(request: Request) -> TokenInfo | None:
        return sessions.get(request.cookies.get("bridge_session", ""))

    bridge.gateway.session_resolver = resolve
    return "sess-a"


def _get(bridge: RunningGateway, params: dict[str, str], session: str | None) -> httpx.Response:
    cookies = {"bridge_session": session} if session else None
    return httpx.get(bridge.url + IID, params=params, cookies=cookies, timeout=30,
                     follow_redirects=False)


def test_iid_study_request_redirects_to_the_viewer_with_the_studies(
    bridge: RunningGateway, world: World, session_a: str
) -> None:
    uids = world.a.studies[:2]
    resp = _get(bridge, {"requestType": "STUDY", "studyUID": ",".join(uids),
                         "viewerType": "IHE_BIR", "diagnosticQuality": "true",
                         "keyImagesOnly": "false"}, session_a)
    assert resp.status_code == 303, resp.text
    target = urlsplit(resp.headers["location"])
    assert target.path == "/viewer/viewer" and not target.netloc
    assert parse_qs(target.query)["StudyInstanceUIDs"] == [",".join(uids)]
    by_acc = _get(bridge, {"requestType": "STUDY",
                           "accessionNumber": world.a.accessions[0]}, session_a)
    assert by_acc.status_code == 303
    assert world.a.studies[0] in by_acc.headers["location"]


def test_iid_patient_request_redirects_to_the_history_with_filters(
    bridge: RunningGateway, world: World, session_a: str
) -> None:
    def issuer_of(who: Any) -> str:
        # match value AND system: the generator reuses one PatientID under two issuers
        return next(s.truth.patient_issuer for s in world.studies
                    if s.truth.patient_id == who.value and s.truth.patient_system == who.system)

    issuer = issuer_of(world.a)
    resp = _get(bridge, {"requestType": "PATIENT", "patientID": f"{world.a.value}^^^{issuer}",
                         "lowerDateTime": "2000-01-01T00:00:00", "mostRecentResults": "3",
                         "modalitiesInStudy": "CT,MR"}, session_a)
    assert resp.status_code == 303, resp.text
    target = urlsplit(resp.headers["location"])
    query = parse_qs(target.query)
    assert target.path == "/app/history"
    assert query["patient"] == [f"{world.a.system}|{world.a.value}"]
    assert query["mostRecentResults"] == ["3"] and query["modalitiesInStudy"] == ["CT,MR"]
    other = _get(bridge, {"requestType": "PATIENT",
                          "patientID": f"{world.b.value}^^^{issuer_of(world.b)}"}, session_a)
    assert other.status_code == 403


@pytest.mark.parametrize(("params", "parameter"), [
    ({}, "requestType"),
    ({"requestType": "SERIES"}, "requestType"),
    ({"requestType": "STUDY"}, "studyUID"),
    ({"requestType": "STUDY", "studyUID": "1.2.abc"}, "studyUID"),
    ({"requestType": "STUDY", "studyUID": "1.2.3,,1.2.4"}, "studyUID"),
    ({"requestType": "STUDY", "accessionNumber": "A*"}, "accessionNumber"),
    ({"requestType": "STUDY", "studyUID": "1.2.3", "diagnosticQuality": "maybe"},
     "diagnosticQuality"),
    ({"requestType": "STUDY", "studyUID": "1.2.3", "keyImagesOnly": "1"}, "keyImagesOnly"),
    ({"requestType": "STUDY", "studyUID": "1.2.3", "viewerType": "<script>"}, "viewerType"),
    ({"requestType": "PATIENT"}, "patientID"),
    ({"requestType": "PATIENT", "patientID": "^^^HOSP"}, "patientID"),
    ({"requestType": "PATIENT", "patientID": "1^^^H", "lowerDateTime": "yesterday"},
     "lowerDateTime"),
    ({"requestType": "PATIENT", "patientID": "1^^^H", "upperDateTime": "2020-13-01"},
     "upperDateTime"),
    ({"requestType": "PATIENT", "patientID": "1^^^H", "mostRecentResults": "0"},
     "mostRecentResults"),
    ({"requestType": "PATIENT", "patientID": "1^^^H", "modalitiesInStudy": "ct;drop"},
     "modalitiesInStudy"),
])
def test_iid_bad_or_missing_parameter_is_400_naming_it(
    bridge: RunningGateway, session_a: str, params: dict[str, str], parameter: str
) -> None:
    resp = _get(bridge, params, session_a)
    assert resp.status_code == 400, resp.text
    assert f"'{parameter}'" in resp.json()["detail"]


def test_iid_unknown_study_and_other_patients_study_are_both_403(
    bridge: RunningGateway, world: World, session_a: str
) -> None:
    # issue 12 item 9: the same answer, so no existence oracle (test_gateway_iid_no_oracle)
    unknown = _get(bridge, {"requestType": "STUDY", "studyUID": "1.2.3.4.5.6.7.8.9.0"},
                   session_a)
    assert unknown.status_code == 403
    unknown_acc = _get(bridge, {"requestType": "STUDY", "accessionNumber": "NO-SUCH-ACC"},
                       session_a)
    assert unknown_acc.status_code == 403
    other = _get(bridge, {"requestType": "STUDY", "studyUID": world.b.studies[0]}, session_a)
    assert other.status_code == 403


def test_iid_without_session_is_refused_and_a_bearer_token_works(
    bridge: RunningGateway, world: World, session_a: str
) -> None:
    params = {"requestType": "STUDY", "studyUID": world.a.studies[0]}
    assert _get(bridge, params, None).status_code == 401
    assert _get(bridge, params, "sess-forged").status_code == 401
    token = bridge.gateway.viewer.mint(patient=f"Patient/{world.a.fhir_id}")
    resp = httpx.get(bridge.url + IID, params=params, follow_redirects=False, timeout=30,
                     headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 303


