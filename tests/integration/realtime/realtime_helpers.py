"""Builders for the real-time integration tests: settings, a running bridge, STOW bodies."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydicom import Dataset
from pydicom.uid import UID

from bridge.config import Settings
from samples.generator import GeneratedStudy, generate_studies, write_part10
from samples.seed_ehr import seed_ehr
from tests.integration.admin_helpers import ADMIN_AUTH, ADMIN_HEADERS
from tests.integration.sync_helpers import study_by_uid
from tests.support.servers import RunningBridge
from tests.support.settings import archive_entry, bridge_config, settings_from, sqlite_url
from tests.support.waits import wait_until

WEBHOOK_SECRET = "test-webhook-" + secrets.token_hex(16)
STOW_TOKEN = "stow-token-" + secrets.token_hex(16)


def realtime_settings(orthanc: Any, hapi: Any, tmp_path: Path, ns: Any, *,
                      realtime: dict[str, Any] | None = None, state_url: str | None = None,
                      **sync: Any) -> Settings:
    """Settings for one test: its own archive name (so its Endpoint is its own) and store
    (a SQLite file in ``tmp_path`` unless ``state_url``)."""
    config = bridge_config(
        archives=[archive_entry(orthanc, f"orthanc-{ns.token}")], fhir_url=hapi.fhir_url,
        fhir={"batch_size": 10}, state_url=state_url or sqlite_url(tmp_path),
        # the poller stays out of the way: these tests prove the event sources
        sync={"backoff_base": 0.2, "backoff_max": 2.0, "lease_seconds": 30.0,
              "poll_interval": 3600.0, "workers": 2, **sync},
        api={"admin_auth": ADMIN_AUTH},
        realtime={"webhook_secret": WEBHOOK_SECRET, "quiet_period": 1.0,
                  "stow_auth": {"bearer_tokens": [STOW_TOKEN],
                                "basic_users": {"modality": STOW_TOKEN}},
                  "reconcile_interval": 0, **(realtime or {})},
    )
    return settings_from(tmp_path / "bridge.yaml", config)


def reconcile_cli(config: Path, *args: str) -> tuple[int, Any]:
    """``imaging-bridge reconcile --config CONFIG --json ARGS``: exit code and reports."""
    from typer.testing import CliRunner

    from bridge.cli import app as cli_app

    result = CliRunner().invoke(cli_app, ["reconcile", "--config", str(config), "--json", *args])
    assert result.exit_code in (0, 3), result.output
    return result.exit_code, json.loads(result.stdout)


async def drain(settings: Settings, uids: Sequence[str] | None = None) -> Any:
    """Mark ``uids`` due (reason manual) in the settings' store and drain the queue once."""
    from tests.support.wiring import sync_context

    async with sync_context(settings) as ctx:
        if uids:
            ctx.store.mark_many_due(settings.archives[0].name, [(u, None) for u in uids],
                                    reason="manual")
        return await ctx.runner.drain()


def make_studies(hapi: Any, ns: Any, count: int = 1, *, series: int = 1,
                 per_series: int = 2) -> list[GeneratedStudy]:
    """Synthetic studies whose patients and orders exist in the EHR (nothing in the archive)."""
    seed = int(ns.token, 16) % 2**31
    studies = list(generate_studies(count, seed=seed, profile="small",
                                    id_prefix=ns.token[:6].upper()))
    seed_ehr([s.truth for s in studies], fhir_url=hapi.fhir_url, seed=seed)
    return studies


def series_instances(study: GeneratedStudy, *, series: int, per_series: int,
                     first_number: int = 1) -> list[Dataset]:
    """``series`` new series of ``per_series`` instances, copies of the study's first one."""
    template = next(study.instances())
    out = []
    for s in range(series):
        series_uid = UID(f"2.25.{uuid.uuid4().int}")
        for i in range(per_series):
            ds = copy.deepcopy(template)
            ds.SeriesInstanceUID = series_uid
            ds.SOPInstanceUID = UID(f"2.25.{uuid.uuid4().int}")
            ds.SeriesNumber = first_number + s
            ds.InstanceNumber = i + 1
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            out.append(ds)
    return out


def multipart(parts: Sequence[bytes], boundary: str | None = None) -> tuple[bytes, str]:
    """A STOW-RS body (PS3.18 10.5.1.1) and its Content-Type."""
    boundary = boundary or f"b-{uuid.uuid4().hex}"
    chunks = []
    for part in parts:
        chunks += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), part,
                   b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f'multipart/related; type="application/dicom"; boundary={boundary}'


def stow_body(datasets: Sequence[Dataset]) -> tuple[bytes, str]:
    return multipart([write_part10(ds) for ds in datasets])


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {STOW_TOKEN}"}


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: float | None = None
           ) -> dict[str, str]:
    ts = str(int(time.time() if timestamp is None else timestamp))
    sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Bridge-Timestamp": ts, "X-Bridge-Signature": f"sha256={sig}",
            "Content-Type": "application/json"}


def imaging_study(hapi: Any, uid: str) -> dict[str, Any] | None:
    """Our ImagingStudy for the study UID, bypassing HAPI's search cache."""
    with httpx.Client(timeout=30) as client:
        resp = client.get(f"{hapi.fhir_url}/ImagingStudy",
                          params={"identifier": f"urn:dicom:uid|urn:oid:{uid}"},
                          headers={"Cache-Control": "no-cache"})
        resp.raise_for_status()
        entries = resp.json().get("entry", [])
    return entries[0]["resource"] if entries else None


def study_counts(hapi: Any, uid: str) -> tuple[int, int] | None:
    found = imaging_study(hapi, uid)
    return (found["numberOfSeries"], found["numberOfInstances"]) if found else None


@contextlib.contextmanager
def no_op() -> Iterator[None]:
    yield


__all__ = ["study_by_uid"]


def store_in_orthanc(orthanc: Any, datasets: Sequence[Dataset]) -> str:
    """Store instances through Orthanc's REST API; returns the Orthanc id of the study."""
    study_id = ""
    with httpx.Client(auth=orthanc.auth, timeout=60) as client:
        for ds in datasets:
            resp = client.post(f"{orthanc.base_url}/instances", content=write_part10(ds))
            resp.raise_for_status()
            study_id = resp.json()["ParentStudy"]
    return study_id


def get_status(bridge: RunningBridge) -> dict[str, Any]:
    with httpx.Client(timeout=30) as client:
        resp = client.get(f"{bridge.url}/status", headers=ADMIN_HEADERS)
        resp.raise_for_status()
        body: dict[str, Any] = resp.json()
    return body


def post_signed(bridge: RunningBridge, payload: Any, **kwargs: Any) -> httpx.Response:
    body = json.dumps(payload).encode()
    with httpx.Client(timeout=30) as client:
        return client.post(f"{bridge.url}/notifications", content=body,
                           headers=signed(body, **kwargs))


def outcome_of(bridge: RunningBridge, uid: str, *, event: str | None = None,
               timeout: float = 15.0) -> dict[str, Any]:
    """The processed outcome of the latest notification about ``uid`` (and ``event``)."""
    def probe() -> dict[str, Any] | None:
        for item in reversed(list(bridge.realtime.recent)):
            if item.get("studyInstanceUID") == uid and event in (None, item.get("event")):
                return dict(item)
        return None
    return wait_until(probe, timeout=timeout, what=f"notification outcome for {uid}")
