"""``serve``'s record worker: built by the composition root when ``record.enabled`` (its dose
rules read at start-up), it runs the ``record.map`` tasks the sync queued until stopped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from record_golden_cases import _study

from bridge import assembly
from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings, FhirSettings, Settings
from bridge.errors import MappingConfigError
from bridge.fhir.client import FhirClient
from bridge.record.rules import load_dose_rules
from bridge.record.service import RecordService
from bridge.sections.record import RecordSettings
from bridge.state import open_store
from bridge.state.tasks import RECORD_MAP, task_key
from tests.support.settings import bridge_config, settings_from, sqlite_url
from tests.support.wiring import sync_context


def _settings(tmp_path: Path, **record: object) -> Settings:
    config = bridge_config(archives=[{"name": "pacs", "base_url": "http://archive.test/dw"}],
                           fhir_url="http://ehr.test/fhir", state_url=sqlite_url(tmp_path),
                           record={"enabled": True, **record})
    return settings_from(tmp_path / "bridge.yaml", config)


async def test_the_root_adds_the_record_worker_when_enabled(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with sync_context(settings) as ctx:
        rooms = assembly.room_services(settings, sync=ctx, urls=assembly.public_urls(settings))
        assert [room.name for room in rooms] == ["record"]


async def test_unreadable_dose_rules_fail_at_start_up(tmp_path: Path) -> None:
    broken = tmp_path / "dose_items.json"
    broken.write_text("{}")
    settings = _settings(tmp_path, dose_rules_file=str(broken))
    async with sync_context(settings) as ctx:
        with pytest.raises(MappingConfigError, match=r"dose_items\.json"):
            assembly.room_services(settings, sync=ctx, urls=assembly.public_urls(settings))


def test_a_missing_dose_rules_file_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"record\.dose_rules_file: no file at"):
        RecordSettings(enabled=True, dose_rules_file=tmp_path / "missing.json")
    RecordSettings(enabled=False, dose_rules_file=tmp_path / "missing.json")  # not used


async def test_the_service_runs_queued_record_tasks_until_stopped(tmp_path: Path) -> None:
    study = _study("MR")  # no report or dose: done without a FHIR request
    archive = DicomwebClient(
        ArchiveSettings(name="pacs", base_url="http://archive.test/dw"),
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=study.to_dicom_json())))
    fhir = FhirClient(FhirSettings(base_url="http://ehr.test/fhir"),
                      transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    store = open_store(sqlite_url(tmp_path))
    key = task_key("pacs", study.study_uid)
    store.enqueue_task(RECORD_MAP, key)
    service = RecordService(store, archives={"pacs": archive}, fhir=fhir,
                            rules=load_dose_rules(), settings=RecordSettings(enabled=True),
                            worker_id="test")
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))

    async def done() -> None:
        while (task := store.task(RECORD_MAP, key)) is None or task.status != "done":
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(done(), timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=10)
    task = store.task(RECORD_MAP, key)
    store.close()
    assert task is not None and task.result is not None
    assert task.result["instances"] == {"report": 0, "dose": 0, "pdf": 0}
