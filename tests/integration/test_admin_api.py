"""The service's operations face against the real servers (issue 4, "Service and
operations"): the admin HTTP API, ``imaging-bridge failures``, and logs that carry study UIDs
but never patient names or IDs."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from bridge.api import create_app
from bridge.cli import app as cli_app
from bridge.config import load_settings
from bridge.logging import JsonFormatter
from bridge.sync.backfill import mark_history
from samples.generator import generate_studies, write_part10
from samples.seed_ehr import seed_ehr
from tests.integration.admin_helpers import ADMIN_HEADERS, with_admin
from tests.integration.fault_helpers import imaging_studies, write_config
from tests.integration.sync_helpers import Loaded, load_and_seed
from tests.support.ports import free_port
from tests.support.servers import app_client
from tests.support.settings import archive_entry
from tests.support.wiring import sync_context


@pytest.fixture
def archive(orthanc_factory: Any) -> Any:
    return orthanc_factory()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Any]:
    """``running(settings, run_sync=...)``: the app with its lifespan, and a client on it
    carrying admin credentials."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(settings: Any, *, run_sync: bool) -> tuple[FastAPI, httpx.AsyncClient]:
            app = create_app(with_admin(settings), run_sync=run_sync)
            client = await stack.enter_async_context(app_client(app, headers=ADMIN_HEADERS))
            return app, client

        yield start


def _sample(families: Any, name: str, labels: dict[str, str]) -> float | None:
    for family in families:
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def test_admin_api_reports_health_status_history_and_metrics_of_a_real_backfill(
    archive: Any, hapi: Any, ns: Any, tmp_path: Path, running: Any
) -> None:
    loaded = load_and_seed(archive, hapi, ns, count=4)
    name = ns.name("arc")
    n = len(loaded.truths)
    settings = load_settings(write_config(
        tmp_path / "bridge.yaml", archives=[archive_entry(archive, name)],
        fhir_url=hapi.fhir_url, state_url=f"sqlite:///{tmp_path / 'state.db'}",
    ))
    app, client = await running(settings, run_sync=True)

    resp = await client.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
    resp = await client.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"ready": True, "checks": {"fhir": "ok", f"archive:{name}": "ok"}}

    # the service's own workers drain what a backfill marks due
    start, end = loaded.dates
    ctx = app.state.ctx
    await mark_history(ctx.archives[name], ctx.store, start=start, end=end, window_days=3650)
    deadline = asyncio.get_running_loop().time() + 180
    while True:
        status = (await client.get("/status")).json()
        if status["studies"]["synced"] == n and status["queue_depth"] == 0:
            break
        assert asyncio.get_running_loop().time() < deadline, status
        await asyncio.sleep(0.5)
    assert status["studies"]["failed"] == 0
    assert status["this_process"]["synced"] == n
    assert status["last_poll"] is not None  # the service's poller ran
    assert status["lag_seconds"] == 0.0  # nothing waiting (was null: issue 20 item 10)
    assert "realtime" not in status  # no event source configured

    uid = loaded.truths[0].study_uid
    resp = await client.get(f"/studies/{uid}")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [s["status"] for s in body["states"]] == ["synced"]
    fhir_id = imaging_studies(hapi, uid)[0]["id"]
    assert body["states"][0]["fhir_id"] == fhir_id
    assert [(h["action"], h["fhir_type"], h["fhir_id"]) for h in body["history"]] == [
        ("create", "ImagingStudy", fhir_id)]
    resp = await client.get(f"/studies/{ns.uid()}")
    assert resp.status_code == 404

    resp = await client.get("/metrics")
    assert resp.status_code == 200
    families = list(text_string_to_metric_families(resp.text))
    assert _sample(families, "bridge_studies_synced_total",
                   {"archive": name, "action": "create"}) == n
    assert _sample(families, "bridge_queue_depth", {"archive": name}) == 0
    assert (_sample(families, "bridge_fhir_request_seconds_count",
                    {"interaction": "batch"}) or 0) >= 1
    assert (_sample(families, "bridge_dicomweb_request_seconds_count",
                    {"archive": name}) or 0) >= n


async def test_readyz_is_503_naming_the_archive_that_is_down_or_refuses_the_credentials(
    archive: Any, hapi: Any, ns: Any, tmp_path: Path, running: Any
) -> None:
    good, down, denied = ns.name("good"), ns.name("down"), ns.name("denied")
    settings = load_settings(write_config(
        tmp_path / "bridge.yaml",
        archives=[
            archive_entry(archive, good),
            archive_entry(archive, down, base_url=f"http://127.0.0.1:{free_port()}"
                                                  "/dicom-web"),
            archive_entry(archive, denied, password=f"wrong-{ns.token}"),
        ],
        fhir_url=hapi.fhir_url, state_url=f"sqlite:///{tmp_path / 'state.db'}",
    ))
    _, client = await running(settings, run_sync=False)
    resp = await client.get("/readyz")
    assert resp.status_code == 503, resp.text
    body = resp.json()
    checks = body["checks"]
    assert body["ready"] is False
    assert checks["fhir"] == "ok"
    assert checks[f"archive:{good}"] == "ok"
    assert checks[f"archive:{down}"].startswith("archive-unavailable")
    assert down in checks[f"archive:{down}"]
    assert "401" in checks[f"archive:{denied}"] and denied in checks[f"archive:{denied}"]
    assert (await client.get("/healthz")).status_code == 200  # alive, just not ready


def _load_without_patient_id(archive: Any, ns: Any) -> str:
    """Store a study whose instances have no PatientID: no policy can find its subject."""
    study = next(iter(generate_studies(1, seed=int(ns.token, 16) % 2**31 + 1,
                                       profile="small", id_prefix=ns.token[:6].upper())))
    with httpx.Client(auth=archive.auth, timeout=60) as client:
        for ds in study.instances():
            ds = copy.deepcopy(ds)
            del ds.PatientID
            resp = client.post(f"{archive.base_url}/instances", content=write_part10(ds))
            assert resp.status_code == 200, resp.text
    return study.study_uid


async def test_failures_commands_list_show_and_requeue_a_permanently_failed_study(
    archive: Any, hapi: Any, ns: Any, tmp_path: Path, root_logging: None
) -> None:
    loaded = load_and_seed(archive, hapi, ns, count=2)
    broken = _load_without_patient_id(archive, ns)
    name = ns.name("arc")
    config = write_config(
        tmp_path / "bridge.yaml", archives=[archive_entry(archive, name)],
        fhir_url=hapi.fhir_url, state_url=f"sqlite:///{tmp_path / 'state.db'}",
    )
    settings = load_settings(config)
    start, end = loaded.dates
    async with sync_context(settings) as ctx:
        await mark_history(ctx.archives[name], ctx.store, start=start.replace(year=1980),
                           end=end.replace(year=2099), window_days=36500)
        stats = await ctx.runner.drain()
    # the broken study failed for good; it blocked neither of the others
    assert (stats.synced, stats.failed) == (len(loaded.truths), 1)
    assert imaging_studies(hapi, broken) == []

    runner = CliRunner()
    listed = await asyncio.to_thread(
        runner.invoke, cli_app, ["failures", "list", "--config", str(config)],
        env={"COLUMNS": "80"})  # a plain terminal: the UID must stay whole
    assert listed.exit_code == 0, listed.output
    assert broken in listed.output and "dicom-data" in listed.output
    assert not any(t.study_uid in listed.output for t in loaded.truths)

    shown = await asyncio.to_thread(
        runner.invoke, cli_app, ["failures", "show", broken, "--config", str(config)])
    assert shown.exit_code == 0, shown.output
    history = json.loads(shown.stdout)
    assert [(h["kind"], h["permanent"], h["study_uid"]) for h in history] == [
        ("dicom-data", True, broken)]
    assert "PatientID" in history[0]["message"]

    unknown = await asyncio.to_thread(
        runner.invoke, cli_app, ["failures", "show", ns.uid(), "--config", str(config)])
    assert unknown.exit_code == 1

    retried = await asyncio.to_thread(
        runner.invoke, cli_app, ["failures", "retry", broken, "--config", str(config)])
    assert retried.exit_code == 0, retried.output
    assert "1 studies due again" in retried.output
    async with sync_context(settings) as ctx:
        view = ctx.store.get_study(name, broken)
        assert view is not None and view.status == "due" and view.attempts == 0
        assert ctx.store.failures() == []


def _load_renamed(archive: Any, ns: Any, family: str, given: str) -> Loaded:
    """Studies of three patients whose DICOM PatientName is ``family^given`` (UTF-8)."""
    studies = list(generate_studies(6, seed=int(ns.token, 16) % 2**31, profile="small",
                                    patients=3, id_prefix=ns.token[:6].upper(),
                                    every_patient=True))
    with httpx.Client(auth=archive.auth, timeout=60) as client:
        for study in studies:
            for ds in study.instances():
                ds.SpecificCharacterSet = "ISO_IR 192"
                ds.PatientName = f"{family}^{given}"
                resp = client.post(f"{archive.base_url}/instances", content=write_part10(ds))
                assert resp.status_code == 200, resp.text
    return Loaded(studies)


async def test_logs_carry_study_uids_but_never_patient_names_or_ids(
    archive: Any, hapi: Any, ns: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    family, given = "Ñúñez-Þórðardóttir", "Zoë"
    loaded = _load_renamed(archive, ns, family, given)
    patients = sorted({t.patient_id for t in loaded.truths})
    assert len(patients) >= 2
    unseeded = patients[0]
    # the EHR knows the other patients, under their (different) names: demographic
    # conflicts get logged; studies of the unknown patient wait: deferrals get logged
    seed_ehr([t for t in loaded.truths if t.patient_id != unseeded], fhir_url=hapi.fhir_url)
    name = ns.name("arc")
    settings = load_settings(write_config(
        tmp_path / "bridge.yaml", archives=[archive_entry(archive, name)],
        fhir_url=hapi.fhir_url, state_url=f"sqlite:///{tmp_path / 'state.db'}",
    ))
    start, end = loaded.dates
    caplog.set_level(logging.DEBUG)
    async with sync_context(settings) as ctx:
        await mark_history(ctx.archives[name], ctx.store, start=start, end=end,
                           window_days=3650)
        stats = await ctx.runner.drain()
    waiting = {t.study_uid for t in loaded.truths if t.patient_id == unseeded}
    assert stats.synced == len(loaded.truths) - len(waiting)
    assert stats.retried == len(waiting)

    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    text = "\n".join(lines) + "\n" + caplog.text
    # JSON escapes non-ASCII: look at the raw values too
    raw = text + "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    secrets = [family, given, "Ñúñez", "Zoë", *patients]
    secrets += [part for t in loaded.truths for part in t.patient_name.split("^") if len(part) > 2]
    leaked = sorted({s for s in secrets if s in raw})
    assert not leaked, f"patient data in the logs: {leaked}"

    def uids_in(message: str) -> set[str]:
        return {str(r.__dict__.get("study_uid")) for r in caplog.records
                if r.getMessage() == message}

    assert uids_in("study sync deferred") >= waiting
    conflicts = uids_in("patient demographics differ from the EHR")
    assert conflicts == {t.study_uid for t in loaded.truths} - waiting
