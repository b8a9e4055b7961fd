"""Builders of the sharing chain tests: site A (the shared Orthanc and HAPI as its archive
and EHR, a SQLite state store of its own, the gateway at a public URL, sharing enabled),
the registry (the shared HAPI under an affinity-domain identifier system of the test's
own, so tests never see each other's documents) and site B's consumer."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import yaml

from bridge.assembly import sharing_publisher, sync_only
from bridge.config import FhirSettings, GatewaySettings, Settings
from bridge.sections.base import TaskPace
from bridge.sections.sharing import SharingSettings
from bridge.sharing.publisher import TASK_KIND
from bridge.sharing.service import publication_worker
from bridge.state.tasks import Task
from samples.generator import GeneratedStudy
from tests.integration.sync_helpers import REPO_ROOT, bridge_settings, load_and_seed

#: site A's gateway as partners see it: the Retrieve URL written in its manifests
GATEWAY_A = "https://site-a.example.org/dicom-web"
ARCHIVE = "orthanc"


def affinity_system(ns: Any, issuer: str) -> str:
    return f"https://health-network.example.org/fhir/sid/{ns.token}/{issuer.lower()}"


def write_policy(path: Path, ns: Any, **policy: Any) -> Path:
    """The repository's sharing policy with the test's own affinity-domain systems and
    ``policy`` keys replaced."""
    data = yaml.safe_load((REPO_ROOT / "mappings" / "sharing.yaml").read_text())
    data["affinity_domain"]["issuers"] = {
        issuer: {"system": affinity_system(ns, issuer)} for issuer in ("HOSP_A", "HOSP_B")}
    data["policy"].update(policy)
    path.write_text(yaml.safe_dump(data))
    return path


def site_a_settings(orthanc: Any, hapi: Any, tmp_path: Path, ns: Any, *,
                    registry_url: str | None = None, register_patients: bool = False,
                    **policy: Any) -> Settings:
    settings = bridge_settings(orthanc, hapi, tmp_path)
    settings.gateway = GatewaySettings(
        enabled=True, public_url=GATEWAY_A, viewer_token_secret="v" * 40,
        # tokens are not validated in these tests: the gateway is only the Retrieve URL
        introspection_url="https://site-a.example.org/introspect", client_id="gateway-a",
        client_secret="s" * 32)
    settings.sharing = SharingSettings(
        enabled=True, registry=FhirSettings(base_url=registry_url or hapi.fhir_url),
        policy_file=write_policy(tmp_path / "sharing.yaml", ns, **policy),
        worker=TaskPace(backoff_base=0.05, backoff_max=0.2, max_attempts=2),
        register_patients=register_patients)
    return settings


@dataclass
class Published:
    study: GeneratedStudy
    #: the patient in the affinity domain (site B asks the registry by it)
    identifier: dict[str, str]


def load_study(orthanc: Any, hapi: Any, ns: Any) -> GeneratedStudy:
    """One small study of the test's own in site A's archive, its patient in site A's EHR."""
    [study] = load_and_seed(orthanc, hapi, ns, count=1).studies
    return study


def register_patient(hapi: Any, ns: Any, study: GeneratedStudy) -> dict[str, str]:
    """The study's patient in the registry, under the affinity domain's identifier."""
    truth = study.truth
    identifier = {"system": affinity_system(ns, truth.patient_issuer),
                  "value": truth.patient_id}
    resp = httpx.post(f"{hapi.fhir_url}/Patient", timeout=60,
                      json={"resourceType": "Patient", "identifier": [identifier]})
    resp.raise_for_status()
    return identifier


async def sync_and_publish(settings: Settings, study_uid: str, *,
                           until_done: bool = False) -> Task | None:
    """Site A: sync the study (its follow-up queues the publication), then run what the
    publication queue has ready; with ``until_done``, until the publication is done (a
    retry comes due after the worker's backoff), within 30 s.  The task as it ends."""
    async with sync_only(settings) as ctx:
        ctx.store.mark_many_due(ARCHIVE, [(study_uid, None)], reason="manual")
        await ctx.runner.drain()
        key = f"{ARCHIVE}/{study_uid}"
        async with sharing_publisher(settings, sync=ctx) as publisher:
            worker = publication_worker(ctx.store, publisher, settings.sharing,
                                        worker_id="site-a-test")
            await worker.drain()
            deadline = time.monotonic() + 30
            while until_done and _status(ctx.store.task(TASK_KIND, key)) != "done":
                assert time.monotonic() < deadline, ctx.store.task(TASK_KIND, key)
                await asyncio.sleep(0.05)  # the backoff is 0.05-0.2 s
                await worker.drain()
        task: Task | None = ctx.store.task(TASK_KIND, key)
        return task


def _status(task: Task | None) -> str | None:
    return task.status if task is not None else None


def add_series(orthanc: Any, study: GeneratedStudy) -> tuple[str, str]:
    """STOW a new series (one instance, a copy of the study's first with new UIDs) into
    the study at site A; its Series and SOP Instance UIDs."""
    ds = pydicom.dcmread(io.BytesIO(next(iter(study.part10()))))
    ds.SeriesInstanceUID = f"2.25.{uuid.uuid4().int}"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"2.25.{uuid.uuid4().int}"
    ds.SeriesNumber = 77
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + buffer.getvalue() + f"\r\n--{boundary}--\r\n".encode())
    resp = httpx.post(f"{orthanc.dicomweb_url}/studies", content=body, timeout=60,
                      auth=(orthanc.username, orthanc.password), headers={
                          "Content-Type": f'multipart/related; type="application/dicom"; '
                                          f"boundary={boundary}",
                          "Accept": "application/dicom+json"})
    resp.raise_for_status()
    return str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def delete_series(orthanc: Any, series_uid: str) -> None:
    """Delete one series from site A's Orthanc (its REST API: /tools/lookup, DELETE)."""
    auth = (orthanc.username, orthanc.password)
    found = httpx.post(f"{orthanc.base_url}/tools/lookup", content=series_uid, auth=auth,
                       timeout=60)
    found.raise_for_status()
    [series] = [f["ID"] for f in found.json() if f["Type"] == "Series"]
    httpx.delete(f"{orthanc.base_url}/series/{series}", auth=auth,
                 timeout=60).raise_for_status()


def study_references(orthanc: Any, study_uid: str, *, skip_modality: str = "KO"
                     ) -> set[tuple[str, str, str]]:
    """(series, SOP class, SOP instance) of every instance of the study at site A but
    its manifests."""
    resp = httpx.get(f"{orthanc.dicomweb_url}/studies/{study_uid}/metadata", timeout=60,
                     auth=(orthanc.username, orthanc.password),
                     headers={"Accept": "application/dicom+json"})
    resp.raise_for_status()
    out = set()
    for ds in resp.json():
        if ds.get("00080060", {}).get("Value", [None])[0] == skip_modality:
            continue
        out.add(tuple(ds[t]["Value"][0] for t in ("0020000E", "00080016", "00080018")))
    return out


def document_ids(hapi: Any, identifier: Mapping[str, str], status: str) -> list[str]:
    resp = httpx.get(f"{hapi.fhir_url}/DocumentReference", timeout=60,
                     headers={"Cache-Control": "no-cache"},
                     params={"patient.identifier": f"{identifier['system']}|"
                                                   f"{identifier['value']}",
                             "status": status})
    resp.raise_for_status()
    return [e["resource"]["id"] for e in resp.json().get("entry", [])]
