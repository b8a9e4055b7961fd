"""The STOW-RS proxy against the real Orthanc and HAPI (issue 5, "STOW-RS proxy")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.realtime.realtime_helpers import (
    bearer,
    make_studies,
    multipart,
    realtime_settings,
    series_instances,
    stow_body,
    study_counts,
)
from tests.support.ports import free_port
from tests.support.servers import RunningBridge
from tests.support.waits import wait_until


def test_stow_through_the_proxy_makes_the_study_searchable_and_a_later_series_updates_counts(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    study = make_studies(hapi, ns)[0]
    settings = realtime_settings(orthanc, hapi, tmp_path, ns)
    with RunningBridge(settings) as bridge, httpx.Client(timeout=60) as client:
        body, ctype = stow_body(series_instances(study, series=2, per_series=2))
        resp = client.post(f"{bridge.url}/dicom-web/studies", content=body,
                           headers={**bearer(), "Content-Type": ctype,
                                    "Accept": "application/dicom+json"})
        assert resp.status_code == 200, resp.text
        # the archive's own STOW response comes back unchanged (PS3.18 10.5.3)
        assert "00081199" in resp.json()
        assert wait_until(lambda: study_counts(hapi, study.study_uid) == (2, 4),
                        what="ImagingStudy with 2 series / 4 instances")

        body, ctype = stow_body(series_instances(study, series=1, per_series=3, first_number=7))
        resp = client.post(f"{bridge.url}/dicom-web/studies/{study.study_uid}", content=body,
                           headers={**bearer(), "Content-Type": ctype})
        assert resp.status_code == 200, resp.text
        assert wait_until(lambda: study_counts(hapi, study.study_uid) == (3, 7),
                        what="counts updated to 3 series / 7 instances")


def test_proxy_refuses_bad_requests_with_a_message_naming_the_problem(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    study = make_studies(hapi, ns)[0]
    settings = realtime_settings(orthanc, hapi, tmp_path, ns)
    good, ctype = stow_body(series_instances(study, series=1, per_series=1))
    with RunningBridge(settings) as bridge, httpx.Client(timeout=60) as client:
        url = f"{bridge.url}/dicom-web/studies"
        no_auth = client.post(url, content=good, headers={"Content-Type": ctype})
        assert no_auth.status_code == 401
        assert "WWW-Authenticate" in no_auth.headers
        wrong = client.post(url, content=good, headers={"Content-Type": ctype,
                                                        "Authorization": "Bearer nope"})
        assert wrong.status_code == 401

        resp = client.post(url, content=b"{}", headers={**bearer(),
                                                         "Content-Type": "application/json"})
        assert resp.status_code == 415 and "application/json" in resp.json()["detail"]
        resp = client.post(url, content=good, headers={
            **bearer(), "Content-Type": 'multipart/related; type="application/dicom+xml"; '
                                        "boundary=x"})
        assert resp.status_code == 415 and "application/dicom+xml" in resp.json()["detail"]
        resp = client.post(url, content=good, headers={
            **bearer(), "Content-Type": 'multipart/related; type="application/dicom"'})
        assert resp.status_code == 400 and "boundary" in resp.json()["detail"]

        not_dicom, ctype2 = multipart([b"hello, this is not a DICOM file" * 10])
        resp = client.post(url, content=not_dicom, headers={**bearer(), "Content-Type": ctype2})
        assert resp.status_code == 400
        assert "part 1 is not a DICOM" in resp.json()["detail"]
        assert "aborted" in resp.json()["detail"]

        truncated = good[: len(good) - 40]
        resp = client.post(url, content=truncated, headers={**bearer(), "Content-Type": ctype})
        assert resp.status_code == 400 and "closing delimiter" in resp.json()["detail"]
    # nothing of that study reached the archive
    with httpx.Client(auth=orthanc.auth) as client:
        found = client.get(f"{orthanc.dicomweb_url}/studies",
                           params={"StudyInstanceUID": study.study_uid})
        assert found.status_code == 204 or found.json() == []


def test_proxy_answers_503_with_retry_after_when_the_archive_is_down(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    study = make_studies(hapi, ns)[0]
    settings = realtime_settings(orthanc, hapi, tmp_path, ns)
    dead = f"http://127.0.0.1:{free_port()}/dicom-web"
    settings.archives[0].base_url = dead
    body, ctype = stow_body(series_instances(study, series=1, per_series=1))
    with RunningBridge(settings) as bridge, httpx.Client(timeout=60) as client:
        resp = client.post(f"{bridge.url}/dicom-web/studies", content=body,
                           headers={**bearer(), "Content-Type": ctype})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "30"
    assert "unreachable" in resp.json()["detail"]
