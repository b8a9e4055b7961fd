"""Two real archives behind the gateway, and the Endpoints the sync writes (issue 8).

A second Orthanc is started for this module (about a second), holding two patients of its
own.  Proves, against the real Orthanc servers, HAPI and the sandbox EHR: a patient token
retrieves its study from ``/dicom-web/{second}/studies/{uid}`` byte for byte and gets 403
for another patient's study there (and for its own study through the default archive's
root, which does not hold it); the sync writes the second archive's Endpoint with the
gateway address and ``requires-access-token``; with IHE IID enabled, HAPI holds the
``ihe-iid`` Endpoint and every ImagingStudy references both; a second run writes nothing,
and turning IID off rewrites the study with one Endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import devstack
import httpx
import pytest

from bridge.config import ArchiveSettings, AuthSettings, Settings, SmartSettings
from bridge.sync.assemble import BRIDGE_TAG
from bridge.sync.endpoints import REQUIRES_ACCESS_TOKEN
from smart_app.sessions import COOKIE_NAME
from smart_app.viewer import find_dist
from tests.integration.gateway.conftest import GATEWAY_CLIENT, VIEWER_APP
from tests.integration.gateway.gateway_helpers import (
    World,
    build_world,
    ehr_patient_token,
    gateway_settings,
    multipart_parts,
)
from tests.integration.sync_helpers import study_by_uid
from tests.support.ports import free_port
from tests.support.servers import RunningGateway
from tests.support.wiring import sync_context

SECOND = "second"
DICOM_ALL = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.fixture(scope="module")
def second_orthanc(own_orthanc: devstack.Orthanc) -> devstack.Orthanc:
    return own_orthanc


@pytest.fixture(scope="module")
def world1(orthanc: Any, hapi: Any) -> World:
    """Two patients' studies in the default archive (the shared Orthanc)."""
    return build_world(orthanc, hapi)


@pytest.fixture(scope="module")
def world2(second_orthanc: devstack.Orthanc, hapi: Any) -> World:
    """Two other patients' studies in the second archive."""
    return build_world(second_orthanc, hapi)


def _two_archive_settings(orthanc: Any, second: devstack.Orthanc, hapi: Any, ehr: Any,
                          tmp: Path, *, port: int, iid: bool = True) -> Settings:
    settings = gateway_settings(
        orthanc, hapi, tmp, port=port, introspection_url=ehr.introspection_url,
        client_id=GATEWAY_CLIENT[0], client_secret=GATEWAY_CLIENT[1], audience=ehr.fhir_url,
        iid_enabled=iid)
    settings.archives.append(ArchiveSettings(
        name=SECOND, base_url=second.dicomweb_url,
        auth=AuthSettings(kind="basic", username=second.username, password=second.password)))
    # the SMART app, for its /app/viewer hand-off (sessions are made in its store directly)
    settings.smart = SmartSettings(enabled=True, client_id="imaging-app",
                                   iss_allowlist=[ehr.fhir_url])
    return settings


@pytest.fixture(scope="module")
def multi(orthanc: Any, second_orthanc: devstack.Orthanc, hapi: Any, ehr: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    settings = _two_archive_settings(orthanc, second_orthanc, hapi, ehr,
                                     tmp_path_factory.mktemp("multi"), port=free_port())
    running = RunningGateway(settings).start()
    try:
        yield running
    finally:
        running.stop()


def _client(multi: RunningGateway, token: str) -> httpx.Client:
    return httpx.Client(base_url=multi.dicomweb + "/", timeout=60,
                        headers={"Authorization": f"Bearer {token}"})


def _uids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["0020000D"]["Value"][0] for r in rows}


def test_patient_token_retrieves_its_study_from_the_second_archive_and_nothing_else(
    multi: RunningGateway, world2: World, second_orthanc: devstack.Orthanc
) -> None:
    token = multi.gateway.viewer.mint(patient=f"Patient/{world2.a.fhir_id}")
    own, other = world2.a.studies[0], world2.b.studies[0]
    with _client(multi, token) as gw, httpx.Client(
            base_url=second_orthanc.dicomweb_url + "/", timeout=60,
            auth=second_orthanc.auth) as direct:
        got = gw.get(f"{SECOND}/studies/{own}", headers={"Accept": DICOM_ALL})
        want = direct.get(f"studies/{own}", headers={"Accept": DICOM_ALL})
        assert got.status_code == want.status_code == 200, got.text[:200]
        assert sorted(multipart_parts(got)) == sorted(multipart_parts(want))
        assert gw.get(f"{SECOND}/studies").json() and \
            _uids(gw.get(f"{SECOND}/studies").json()) == set(world2.a.studies)
        meta = gw.get(f"{SECOND}/studies/{own}/metadata")
        assert meta.status_code == 200
        assert second_orthanc.dicomweb_url not in meta.text
        for path in (f"{SECOND}/studies/{other}", f"{SECOND}/studies/{other}/metadata",
                     f"{SECOND}/studies", f"studies/{own}"):
            params = {"StudyInstanceUID": other} if path == f"{SECOND}/studies" else None
            resp = gw.get(path, params=params, headers={"Accept": "*/*"})
            # another patient's study in the second archive; or the patient's own study
            # asked of the default archive (the root), which does not hold it
            assert resp.status_code == 403, (path, resp.status_code, resp.text[:200])
        assert gw.get("nope/studies").status_code == 404


def test_ehr_token_sees_its_patient_in_the_second_archive_with_one_audience(
    multi: RunningGateway, world2: World, ehr: Any
) -> None:
    token = ehr_patient_token(ehr, client_id=VIEWER_APP[0], secret=VIEWER_APP[1],
                              redirect_uri=VIEWER_APP[2], patient=world2.b.fhir_id,
                              scope="patient/ImagingStudy.rs")
    with _client(multi, token) as gw:
        assert _uids(gw.get(f"{SECOND}/studies").json()) == set(world2.b.studies)
        resp = gw.get(f"{SECOND}/studies/{world2.b.studies[0]}/metadata")
        assert resp.status_code == 200
        assert gw.get(f"{SECOND}/studies/{world2.a.studies[0]}").status_code == 403


def test_viewer_opens_a_second_archive_study_on_its_data_source(
    multi: RunningGateway, world2: World, world1: World
) -> None:
    """The SMART app's /app/viewer (as the history page links it) and IID STUDY send OHIF to
    the archive's data source route; its token then opens the study at that base."""
    smart = multi.app.state.smart
    session = smart.store.create({"access_token": "ehr-token", "patient": world2.a.fhir_id,
                                  "scope": "launch patient/ImagingStudy.rs"}, lifetime=600)
    cookies = {COOKIE_NAME: session.cookie}
    own = world2.a.studies[0]
    resp = httpx.get(f"{multi.url}/app/viewer", params={"StudyInstanceUIDs": own},
                     cookies=cookies, timeout=30, follow_redirects=False)
    assert resp.status_code == 303, resp.text[:300]
    target = urlsplit(resp.headers["location"])
    assert target.path == f"/viewer/viewer/{SECOND}"
    query = parse_qs(target.query)
    assert query["StudyInstanceUIDs"] == [own] and "token" not in query
    # the viewer page asks the app for its token (smart_app.viewer_session)
    minted = httpx.post(f"{multi.url}/app/viewer-token", cookies=cookies, timeout=30,
                        headers={"X-Bridge-Viewer": "renew"})
    with _client(multi, minted.json()["access_token"]) as gw:
        assert gw.get(f"{SECOND}/studies/{own}/metadata").status_code == 200

    # a study of the default archive keeps the old address: OHIF's default data source
    mine = smart.store.create({"access_token": "ehr-token", "patient": world1.a.fhir_id},
                              lifetime=600)
    resp = httpx.get(f"{multi.url}/app/viewer", params={"StudyInstanceUIDs":
                                                        world1.a.studies[0]},
                     cookies={COOKIE_NAME: mine.cookie}, timeout=30, follow_redirects=False)
    assert urlsplit(resp.headers["location"]).path == "/viewer/viewer"

    iid = httpx.get(f"{multi.url}/IHEInvokeImageDisplay", timeout=30, follow_redirects=False,
                    params={"requestType": "STUDY", "studyUID": own}, cookies=cookies)
    assert iid.status_code == 303, iid.text
    assert iid.headers["location"].startswith(f"/viewer/viewer/{SECOND}?StudyInstanceUIDs=")

    if find_dist(None) is not None:  # OHIF's config: one data source per archive
        config = httpx.get(f"{multi.url}/viewer/app-config.js", timeout=30).text
        body = json.loads(config.removeprefix("window.config = ").rstrip(";\n"))
        roots = {d["sourceName"]: d["configuration"]["wadoRoot"] for d in body["dataSources"]}
        assert roots == {"orthanc": multi.dicomweb, SECOND: f"{multi.dicomweb}/{SECOND}"}


def _endpoints(hapi: Any, study: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.Client(timeout=30) as client:
        return [client.get(f"{hapi.fhir_url}/{ref['reference']}").json()
                for ref in study["endpoint"]]


async def _sync(settings: Settings, due: dict[str, list[str]]) -> Any:
    async with sync_context(settings) as ctx:
        for archive, uids in due.items():
            ctx.store.mark_many_due(archive, [(u, None) for u in uids], reason="manual")
        return await ctx.runner.drain()


async def test_sync_writes_gateway_endpoints_per_archive_and_the_iid_endpoint(
    multi: RunningGateway, world2: World, world1: World, hapi: Any
) -> None:
    settings = multi.settings
    due = {SECOND: world2.a.studies + world2.b.studies, "orthanc": world1.a.studies[:1]}
    stats = await _sync(settings, due)
    assert stats.failed == stats.retried == 0
    total = sum(len(u) for u in due.values())
    assert stats.synced + stats.unchanged == total

    iid_address = f"{multi.url}/IHEInvokeImageDisplay"
    for archive, uids in due.items():
        base = multi.dicomweb + (f"/{SECOND}" if archive == SECOND else "")
        for uid in uids:
            [study] = study_by_uid(hapi, uid)
            wado, iid = _endpoints(hapi, study)  # ImagingStudy.endpoint 0..*: both, in order
            assert wado["address"] == base
            assert wado["connectionType"]["code"] == "dicom-wado-rs"
            assert {"url": REQUIRES_ACCESS_TOKEN, "valueBoolean": True} in wado["extension"]
            assert iid["address"] == iid_address and iid["status"] == "active"
            assert iid["connectionType"] == {
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                "code": "ihe-iid", "display": "IHE IID"}
            assert iid["payloadType"] == [{"text": "DICOM IID"}]
            assert any(t["system"] == BRIDGE_TAG["system"] and t["code"] == BRIDGE_TAG["code"]
                       for t in iid["meta"]["tag"])

    versions = {u: study_by_uid(hapi, u)[0]["meta"]["versionId"] for u in due[SECOND]}
    again = await _sync(settings, due)  # a second run (a new process): zero writes
    assert (again.synced, again.unchanged) == (0, total)
    assert {u: study_by_uid(hapi, u)[0]["meta"]["versionId"] for u in due[SECOND]} == versions

    off = settings.model_copy(deep=True)
    off.gateway.iid_enabled = False  # IID turned off: the study is rewritten without it
    uid = world2.a.studies[0]
    changed = await _sync(off, {SECOND: [uid]})
    assert changed.synced == 1
    [study] = study_by_uid(hapi, uid)
    [only] = _endpoints(hapi, study)
    assert only["address"] == f"{multi.dicomweb}/{SECOND}"
