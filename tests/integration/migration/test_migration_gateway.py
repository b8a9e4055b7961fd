"""The migration gateway's QIDO-RS union (issue 15) on real servers: a DCMTK dcmqrscp
playing the legacy PACS, the shared Orthanc as archive, the gateway in the bridge's app.

Patient A has at least three studies: one in both (the archive's row must win), the others
only at the legacy source; patient B has studies only at the legacy source, which A's token
must never find nor retrieve.  A second source that is down leaves the answer standing with
a Warning header.  A legacy-only study is retrieved through the gateway by WADO-RS,
byte-identical to what the source sends, and its migration task is queued first.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from devservers.dcmqrscp import Dcmqrscp, store_files

from bridge.migration.client import LegacySource
from bridge.migration.gateway_union import FIRST
from bridge.sections.migration import LegacySourceSettings, MigrationSettings
from bridge.state.store import open_store
from samples.generator import GeneratedStudy, generate_studies
from samples.load import load_studies
from tests.integration.gateway.gateway_helpers import gateway_settings, multipart_parts
from tests.integration.migration.legacy_servers import settings_for, write_files
from tests.support.ports import free_port
from tests.support.servers import RunningGateway

STUDY_UID = "0020000D"
RETRIEVE_AE = "00080054"
AVAILABILITY = "00080056"


@dataclass(frozen=True)
class Patient:
    system: str
    value: str
    studies: list[str]


@dataclass(frozen=True)
class Setup:
    bridge: RunningGateway
    a: Patient
    b: Patient
    in_archive: str  # A's study the archive holds too
    source: LegacySourceSettings
    files: dict[str, bytes]  # SOP Instance UID -> the file loaded into the legacy source


def _people(studies: list[GeneratedStudy]) -> tuple[Patient, Patient]:
    people: dict[tuple[str, str], list[str]] = {}
    for s in studies:
        people.setdefault((s.truth.patient_system, s.truth.patient_id), []).append(
            s.truth.study_uid)
    assert len(people) == 2
    # A: the patient with more studies (6 over 2 patients: at least 3), B: the other
    # (every_patient: at least 1), whatever the generator's draw
    b, a = (Patient(k[0], k[1], v) for k, v in sorted(people.items(),
                                                        key=lambda kv: len(kv[1])))
    return a, b


@pytest.fixture(scope="module")
def setup(orthanc: Any, hapi: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Setup]:
    token = uuid.uuid4().hex[:6].upper()
    studies = list(generate_studies(6, seed=int(token, 16), profile="small", patients=2,
                                    id_prefix=token, every_patient=True))
    a, b = _people(studies)
    in_archive = a.studies[0]
    loaded = load_studies([s for s in studies if s.truth.study_uid == in_archive],
                          url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password)
    assert loaded.failed_studies == 0, loaded.errors
    tmp = tmp_path_factory.mktemp("migration-gateway")
    with Dcmqrscp(ae_title="LEGACY-GW") as legacy, tempfile.TemporaryDirectory() as files:
        paths = write_files(studies, Path(files))
        store_files(paths, host=legacy.host, port=legacy.port, called_ae=legacy.ae_title)
        loaded = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID):
                  p.read_bytes() for p in paths}
        port = free_port()
        # viewer tokens only: the EHR's introspection endpoint is never asked
        settings = gateway_settings(
            orthanc, hapi, tmp, port=port, client_id="x", client_secret="y" * 20,
            introspection_url=f"http://127.0.0.1:{free_port()}/introspect")
        down = settings_for("legacy-down", "LEGACY-DOWN", free_port())
        source = settings_for("legacy-gw", legacy.ae_title, legacy.port)
        settings.migration = MigrationSettings(sources=[source, down], gateway_union=True)
        running = RunningGateway(settings).start()
        try:
            yield Setup(running, a, b, in_archive, source, loaded)
        finally:
            running.stop()


def _get(setup: Setup, patient: Patient, path: str, accept: str, **params: str
         ) -> httpx.Response:
    token = setup.bridge.gateway.viewer.mint(patient=f"{patient.system}|{patient.value}")
    return httpx.get(f"{setup.bridge.dicomweb}/{path}", params=params, timeout=60,
                     headers={"Authorization": f"Bearer {token}", "Accept": accept})


def _search(setup: Setup, patient: Patient, **params: str) -> httpx.Response:
    return _get(setup, patient, "studies", "application/dicom+json", **params)


DICOM_PARTS = 'multipart/related; type="application/dicom"'


def _data_set(part10: bytes) -> tuple[str, bytes]:
    """Transfer syntax and data set bytes of a Part-10 file (its file meta left out)."""
    meta = pydicom.dcmread(io.BytesIO(part10), stop_before_pixels=True).file_meta
    length = int(meta.FileMetaInformationGroupLength)
    return str(meta.TransferSyntaxUID), part10[144 + length:]


def _by_uid(resp: httpx.Response) -> dict[str, dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    return {row[STUDY_UID]["Value"][0]: row for row in resp.json()}


def test_patient_search_answers_archive_and_legacy_studies_of_the_patient_only(
        setup: Setup) -> None:
    resp = _search(setup, setup.a)
    rows = _by_uid(resp)
    assert sorted(rows) == sorted(setup.a.studies)
    assert not set(rows) & set(setup.b.studies)
    # the archive's row wins; a legacy-only one says where it lives
    assert rows[setup.in_archive].get(AVAILABILITY, {}).get("Value") != ["NEARLINE"]
    for uid in set(setup.a.studies) - {setup.in_archive}:
        assert rows[uid][RETRIEVE_AE]["Value"] == ["LEGACY-GW"]
        assert rows[uid][AVAILABILITY]["Value"] == ["NEARLINE"]
    # the second source is down: the others' answer stands, with a Warning naming it
    warning = resp.headers.get("warning", "")
    assert warning.startswith("299 ") and "legacy-down" in warning


def test_patient_never_sees_another_patients_legacy_study(setup: Setup) -> None:
    for params in ({}, {"PatientName": "*"}, {"StudyDate": "19000101-29991231"}):
        rows = _by_uid(_search(setup, setup.a, **params))
        assert not set(rows) & set(setup.b.studies), params
    # naming B's PatientID: 403, or (the generator may give B A's MRN under another
    # issuer, the same PatientID) A's studies only
    named = _search(setup, setup.a, PatientID=setup.b.value)
    assert named.status_code in (200, 403)
    if named.status_code == 200:
        assert not set(_by_uid(named)) & set(setup.b.studies)
    rows = _by_uid(_search(setup, setup.b))
    assert sorted(rows) == sorted(setup.b.studies)


def test_a_legacy_only_study_is_retrieved_through_the_gateway_and_queued_first(
        setup: Setup) -> None:
    uid = next(u for u in setup.a.studies if u != setup.in_archive)
    store = open_store(setup.bridge.settings.state.url)
    kind = f"migrate.{setup.source.name}"
    store.enqueue_task(kind, setup.b.studies[0])  # queued by the inventory, due now
    resp = _get(setup, setup.a, f"studies/{uid}", DICOM_PARTS)
    assert resp.status_code == 200, resp.text
    parts = multipart_parts(resp)
    by_uid = {str(pydicom.dcmread(io.BytesIO(p), stop_before_pixels=True).SOPInstanceUID): p
              for p in parts}
    direct = asyncio.run(LegacySource(setup.source).get_study(uid))
    assert sorted(by_uid) == sorted(i.sop_instance_uid for i in direct.received)
    # byte-identical to the legacy copy: as the source sends it, and the data set loaded
    for one in direct.received:
        assert by_uid[one.sop_instance_uid] == one.part10()
        assert _data_set(by_uid[one.sop_instance_uid]) == _data_set(
            setup.files[one.sop_instance_uid])
    # one instance, and the metadata (no bulk data)
    one = direct.received[0]
    ds = pydicom.dcmread(io.BytesIO(one.part10()), stop_before_pixels=True)
    path = f"studies/{uid}/series/{ds.SeriesInstanceUID}/instances/{one.sop_instance_uid}"
    single = _get(setup, setup.a, path, DICOM_PARTS)
    assert multipart_parts(single) == [one.part10()]
    meta = _get(setup, setup.a, f"studies/{uid}/metadata", "application/dicom+json")
    assert meta.status_code == 200, meta.text
    assert len(meta.json()) == len(parts) and all("7FE00010" not in r for r in meta.json())
    # the viewer's study was queued first, before the inventory's
    task = store.task(kind, uid)
    assert task is not None and task.status == "due" and task.due_at == FIRST
    claimed = store.claim_tasks(kind, limit=1, worker="test", lease_seconds=1)
    assert [t.key for t in claimed] == [uid]


def test_another_patients_legacy_study_is_not_retrieved(setup: Setup) -> None:
    for path in (f"studies/{setup.b.studies[0]}", f"studies/{setup.b.studies[0]}/metadata"):
        resp = _get(setup, setup.a, path, DICOM_PARTS if "metadata" not in path
                    else "application/dicom+json")
        assert resp.status_code == 403, path
    assert setup.bridge.gateway.legacy is not None
