"""The migration gateway's QIDO-RS union (issue 15) on real servers: a DCMTK dcmqrscp
playing the legacy PACS, the shared Orthanc as archive, the gateway in the bridge's app.

Patient A has one study in both (the archive's row must win) and one only at the legacy
source; patient B has studies only at the legacy source, which A's token must never see.
A second source that is down leaves the answer standing with a Warning header.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from devservers.dcmqrscp import Dcmqrscp, store_files

from bridge.sections.migration import MigrationSettings
from samples.generator import GeneratedStudy, generate_studies
from samples.load import load_studies
from tests.integration.gateway.gateway_helpers import gateway_settings
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


def _people(studies: list[GeneratedStudy]) -> tuple[Patient, Patient]:
    people: dict[tuple[str, str], list[str]] = {}
    for s in studies:
        people.setdefault((s.truth.patient_system, s.truth.patient_id), []).append(
            s.truth.study_uid)
    assert len(people) == 2
    a, b = (Patient(k[0], k[1], v) for k, v in sorted(people.items()))
    return a, b


@pytest.fixture(scope="module")
def setup(orthanc: Any, hapi: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Setup]:
    token = uuid.uuid4().hex[:6].upper()
    studies = list(generate_studies(4, seed=int(token, 16), profile="small", patients=2,
                                    id_prefix=token, every_patient=True))
    a, b = _people(studies)
    in_archive = a.studies[0]
    loaded = load_studies([s for s in studies if s.truth.study_uid == in_archive],
                          url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password)
    assert loaded.failed_studies == 0, loaded.errors
    tmp = tmp_path_factory.mktemp("migration-gateway")
    with Dcmqrscp(ae_title="LEGACY-GW") as legacy, tempfile.TemporaryDirectory() as files:
        store_files(write_files(studies, Path(files)), host=legacy.host, port=legacy.port,
                    called_ae=legacy.ae_title)
        port = free_port()
        # viewer tokens only: the EHR's introspection endpoint is never asked
        settings = gateway_settings(
            orthanc, hapi, tmp, port=port, client_id="x", client_secret="y" * 20,
            introspection_url=f"http://127.0.0.1:{free_port()}/introspect")
        down = settings_for("legacy-down", "LEGACY-DOWN", free_port())
        settings.migration = MigrationSettings(
            sources=[settings_for("legacy-gw", legacy.ae_title, legacy.port), down],
            gateway_union=True)
        running = RunningGateway(settings).start()
        try:
            yield Setup(running, a, b, in_archive)
        finally:
            running.stop()


def _search(setup: Setup, patient: Patient, **params: str) -> httpx.Response:
    token = setup.bridge.gateway.viewer.mint(patient=f"{patient.system}|{patient.value}")
    return httpx.get(f"{setup.bridge.dicomweb}/studies", params=params, timeout=60,
                     headers={"Authorization": f"Bearer {token}",
                              "Accept": "application/dicom+json"})


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
    named = _search(setup, setup.a, PatientID=setup.b.value)
    assert named.status_code == 403
    rows = _by_uid(_search(setup, setup.b))
    assert sorted(rows) == sorted(setup.b.studies)
