"""Smoke tests of the real servers the bridge talks to, and of devstack itself."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import devstack
import httpx
import numpy as np
import pytest
import requests
import sqlalchemy as sa
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

from tests.support.waits import wait_until

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

REPO_ROOT = Path(__file__).resolve().parents[2]
DEVSTACK = REPO_ROOT / "docker" / "local" / "devstack.py"


def make_ct(ns: Namespace, study_uid: str) -> Dataset:
    """A tiny 8x8 CT image belonging to the test's own patient/study."""
    sop_uid = ns.uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ns.uid()
    ds.PatientID = ns.patient_id()
    ds.PatientName = f"Smoke^{ns.token}"
    ds.AccessionNumber = ns.accession()
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.Modality = "CT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "CHEST"
    ds.Rows = 8
    ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(64, dtype=np.uint16).reshape(8, 8).tobytes()
    return ds


def dicomweb_client(orthanc: Any) -> DICOMwebClient:
    session = requests.Session()
    session.auth = (orthanc.username, orthanc.password)
    return DICOMwebClient(url=orthanc.dicomweb_url, session=session)


# --------------------------------------------------------------------------- Orthanc


def test_orthanc_stow_then_qido(orthanc: Any, ns: Namespace) -> None:
    client = dicomweb_client(orthanc)
    study_uid = ns.uid()
    ds = make_ct(ns, study_uid)

    response = client.store_instances(datasets=[ds])
    assert not response.get("FailedSOPSequence")
    assert [item.ReferencedSOPInstanceUID for item in response.ReferencedSOPSequence] == [
        ds.SOPInstanceUID
    ]

    studies = client.search_for_studies(search_filters={"StudyInstanceUID": study_uid})
    assert len(studies) == 1
    study = Dataset.from_json(studies[0])
    assert study.PatientID == ns.patient_id()
    assert study.AccessionNumber == ns.accession()

    # A non-"main" tag comes back through includefield at series level.
    series = client.search_for_series(study_instance_uid=study_uid, fields=["BodyPartExamined"])
    assert [Dataset.from_json(s).BodyPartExamined for s in series] == ["CHEST"]

    # Another patient's ID matches nothing.
    other = client.search_for_studies(
        search_filters={"StudyInstanceUID": study_uid, "PatientID": ns.patient_id(2)}
    )
    assert other == []


def test_orthanc_requires_authentication(orthanc: Any) -> None:
    assert httpx.get(f"{orthanc.dicomweb_url}/studies").status_code == 401
    assert httpx.get(f"{orthanc.base_url}/system", auth=("bridge", "wrong")).status_code == 401
    assert httpx.get(f"{orthanc.base_url}/system", auth=orthanc.auth).status_code == 200


# --------------------------------------------------------------------------- HAPI FHIR

IDENTIFIER_SYSTEM = "urn:oid:1.2.3.4.5.6.7"


def test_hapi_conditional_create_is_idempotent(hapi: Any, ns: Namespace) -> None:
    value = ns.patient_id()
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": value}],
        "name": [{"family": "Smoke", "given": [ns.token]}],
    }
    headers = {
        "Content-Type": "application/fhir+json",
        "Accept": "application/fhir+json",
        "If-None-Exist": f"identifier={IDENTIFIER_SYSTEM}|{value}",
    }
    with httpx.Client(base_url=hapi.fhir_url, timeout=60) as client:
        first = client.post("/Patient", json=patient, headers=headers)
        assert first.status_code == 201, first.text
        second = client.post("/Patient", json=patient, headers=headers)
        assert second.status_code == 200, second.text
        assert first.json()["id"] == second.json()["id"]

        bundle = client.get(
            "/Patient",
            params={"identifier": f"{IDENTIFIER_SYSTEM}|{value}"},
            headers={"Accept": "application/fhir+json"},
        ).json()
        entries = bundle.get("entry", [])
        assert [e["resource"]["id"] for e in entries] == [first.json()["id"]]


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_roundtrip(postgres: Any, ns: Namespace) -> None:
    assert postgres.url.startswith("postgresql+psycopg://")
    engine = sa.create_engine(postgres.url)
    table = f"smoke_{ns.token}"
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text)"))
            conn.execute(sa.text(f"INSERT INTO {table} (name) VALUES (:n)"), {"n": ns.token})
        with engine.connect() as conn:
            rows = conn.execute(sa.text(f"SELECT id, name FROM {table}")).all()
            assert [tuple(r) for r in rows] == [(1, ns.token)]
            assert conn.execute(sa.text("SELECT current_user")).scalar() == "bridge"
            assert conn.execute(sa.text("SHOW fsync")).scalar() == "off"
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE {table}"))
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- devstack CLI


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); look at its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for_state(proc: subprocess.Popen[bytes], state: Path, timeout: float) -> dict[str, Any]:
    def written() -> bool:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        return state.exists()

    wait_until(written, timeout=timeout, every=0.2, what="devstack up's state file")
    data: dict[str, Any] = json.loads(state.read_text())
    return data


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive once all are gone or ``timeout`` seconds have passed."""
    with contextlib.suppress(AssertionError):
        wait_until(lambda: not any(_alive(p) for p in pids), timeout=timeout, every=0.2,
                   what="the servers' exit")
    return [p for p in pids if _alive(p)]


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_devstack_up_stops_everything(tmp_path: Path, how: str) -> None:
    state = tmp_path / "stack.json"
    proc = subprocess.Popen(
        [sys.executable, str(DEVSTACK), "up", "--state", str(state), "--only", "orthanc,postgres"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        data = _wait_for_state(proc, state, timeout=60)
        endpoints = devstack.load_state(state)
        orthanc = endpoints["orthanc"]
        assert httpx.get(f"{orthanc.base_url}/system", auth=orthanc.auth).status_code == 200
        assert endpoints["postgres"].url.startswith("postgresql+psycopg://bridge:")
        assert "hapi" not in endpoints
        pids = [data["orthanc"]["pid"], data["postgres"]["pid"]]
        assert all(_alive(p) for p in pids)

        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
            assert not state.exists()
            assert not Path(data["orthanc"]["log_path"]).parent.exists()  # temp dirs removed
        else:
            # The runner dies without any cleanup: the kernel's parent-death signal
            # must still stop the servers.
            proc.kill()
            proc.wait(10)
        assert _wait_gone(pids, timeout=30) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if state.exists():
            for key in ("orthanc", "postgres"):
                log_path = json.loads(state.read_text()).get(key, {}).get("log_path")
                if log_path:
                    shutil.rmtree(Path(log_path).parent, ignore_errors=True)


def test_devstack_relaunches_when_port_taken() -> None:
    """Another process grabbing the chosen port before the server binds it is survivable."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = devstack.Orthanc()
        server.port = taken
        server._update_urls()
        with server:
            assert server.port != taken
            assert server.base_url.endswith(f":{server.port}")
            response = httpx.get(f"{server.base_url}/system", auth=server.auth)
            assert response.status_code == 200
            assert response.json()["HttpPort"] == server.port
        assert not server.running
