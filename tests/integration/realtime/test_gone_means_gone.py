"""Gone means gone, and a UID is never a path: issue 12 items 1 and 2 against the real
Orthanc and HAPI.

Orthanc keys a study on PatientID + StudyInstanceUID: one UID stored under two patients is
two Orthanc studies, QIDO lists both rows, and WADO-RS ``/studies/{uid}/metadata`` answers
404.  Before the fix the bridge took that 404 for "the study is gone" and ran the delete
policy on a live ImagingStudy.
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import devstack
import httpx
import pytest
from pydicom.uid import UID

from bridge.state.enums import Status
from tests.integration.realtime.realtime_helpers import (
    STOW_TOKEN,
    imaging_study,
    make_studies,
    post_signed,
    realtime_settings,
    series_instances,
    store_in_orthanc,
)
from tests.support.servers import RunningBridge
from tests.support.waits import wait_until


@pytest.fixture(scope="module")
def orthanc(own_orthanc: devstack.Orthanc) -> devstack.Orthanc:
    """This module's own Orthanc, in place of the shared one: the studies stored here are
    broken on purpose, and other tests backfill the shared archive expecting no failure."""
    return own_orthanc


@pytest.mark.parametrize("policy", ["delete", "entered-in-error", "keep"])
def test_a_study_uid_under_two_patients_is_never_deleted_whatever_the_policy(
    policy: str, orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    study = make_studies(hapi, ns)[0]
    first = series_instances(study, series=1, per_series=1)
    store_in_orthanc(orthanc, first)
    settings = realtime_settings(orthanc, hapi, tmp_path, ns,
                                 realtime={"delete_policy": policy})
    archive = settings.archives[0].name
    with RunningBridge(settings) as bridge:
        store = bridge.realtime.sync.store
        post_signed(bridge, {"studyInstanceUID": study.study_uid, "event": "created"})
        before = wait_until(lambda: imaging_study(hapi, study.study_uid), what="ImagingStudy")
        wait_until(lambda: (v := store.get_study(archive, study.study_uid))
                 and v.status is Status.SYNCED, what="study synced")

        # the same StudyInstanceUID under another PatientID: an identity error at the site
        other = copy.deepcopy(first[0])
        other.PatientID = f"{ns.token}-OTHER"
        other.SOPInstanceUID = UID(f"2.25.{uuid.uuid4().int}")
        other.file_meta.MediaStorageSOPInstanceUID = other.SOPInstanceUID
        store_in_orthanc(orthanc, [other])
        with httpx.Client(auth=orthanc.auth, timeout=30) as client:
            rows = client.get(f"{orthanc.dicomweb_url}/studies",
                              params={"StudyInstanceUID": study.study_uid}).json()
            metadata = client.get(f"{orthanc.dicomweb_url}/studies/{study.study_uid}/metadata")
        assert len(rows) == 2  # the premise: QIDO lists both ...
        assert metadata.status_code == 404  # ... and WADO-RS metadata answers 404

        post_signed(bridge, {"studyInstanceUID": study.study_uid, "event": "deleted"})
        view = wait_until(lambda: (v := store.get_study(archive, study.study_uid))
                        and v.status is Status.FAILED and v, what="study failed")
        history = store.study_history(study.study_uid)

    assert view.last_error_kind == "dicom-data"
    assert "(0020,000D) StudyInstanceUID" in (view.last_error or "")
    assert "2 patients" in (view.last_error or "")
    after = imaging_study(hapi, study.study_uid)
    assert after is not None and after["id"] == before["id"]
    assert after["status"] == before["status"] != "entered-in-error"
    actions = [getattr(h, "action", None) for h in history]
    assert "delete" not in actions and "mark-entered-in-error" not in actions


@pytest.mark.filterwarnings("ignore:The value length:UserWarning")  # pydicom on the forged UI
def test_a_stored_uid_with_a_path_in_it_is_a_data_error_and_fetches_nothing_else(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    """A StudyInstanceUID ``1.2.3/../<other UID>`` once made the bridge read another study's
    metadata.  Orthanc stores such a value as it is; the bridge must refuse it by name."""
    victim, = make_studies(hapi, ns)
    store_in_orthanc(orthanc, series_instances(victim, series=1, per_series=1))
    forged = copy.deepcopy(next(victim.instances()))
    forged.StudyInstanceUID = f"2.25.{uuid.uuid4().int % 10**20}/../{victim.study_uid}"
    forged.SeriesInstanceUID = UID(f"2.25.{uuid.uuid4().int}")
    forged.SOPInstanceUID = UID(f"2.25.{uuid.uuid4().int}")
    forged.file_meta.MediaStorageSOPInstanceUID = forged.SOPInstanceUID
    store_in_orthanc(orthanc, [forged])
    settings = realtime_settings(orthanc, hapi, tmp_path, ns)
    archive = settings.archives[0].name
    with RunningBridge(settings) as bridge:
        store = bridge.realtime.sync.store
        resp = post_signed(bridge, {"studyInstanceUID": forged.StudyInstanceUID,
                                    "event": "created"})
        if resp.status_code == 202:  # queued: the worker must refuse it by name
            view = wait_until(lambda: (v := store.get_study(archive, forged.StudyInstanceUID))
                            and v.status is Status.FAILED and v, what="forged UID failed")
            assert view.last_error_kind == "dicom-data"
            assert "(0020,000D) StudyInstanceUID" in (view.last_error or "")
        else:  # refused at the door, naming the field
            assert resp.status_code == 400 and "StudyInstanceUID" in resp.text
        # the victim's metadata was never fetched under the forged UID: nothing was written
        # for it by this bridge, whose archive name is this test's own
        assert store.get_study(archive, victim.study_uid) is None
    found = imaging_study(hapi, victim.study_uid)
    assert found is None


def test_stow_proxy_refuses_dot_segments_and_invalid_uids_in_the_path(
    orthanc: Any, hapi: Any, ns: Any, tmp_path: Path
) -> None:
    settings = realtime_settings(orthanc, hapi, tmp_path, ns)
    with RunningBridge(settings) as bridge, httpx.Client(timeout=30) as client:
        headers = {"Authorization": f"Bearer {STOW_TOKEN}",
                   "Content-Type": 'multipart/related; type="application/dicom"; boundary=b'}
        for path in ("%2e%2e", "..%2e", "1.2.03", "1.2.3%0A", "1.2.3%3F"):
            resp = client.post(f"{bridge.url}/dicom-web/studies/{path}", headers=headers,
                               content=b"--b--\r\n")
            # before the fix "%2e%2e" reached the archive as POST /dicom-web
            assert resp.status_code == 400, (path, resp.status_code, resp.text)
            assert "(0020,000D) StudyInstanceUID" in resp.text, path
        # an encoded slash never matches the one-segment route: nothing is forwarded
        resp = client.post(f"{bridge.url}/dicom-web/studies/1.2.3%2F..%2F4.5",
                           headers=headers, content=b"--b--\r\n")
        assert resp.status_code in (404, 405)
