"""The migration engine against a real legacy PACS (DCMTK dcmqrscp) and the shared Orthanc
archive (issue 15): ``migrate inventory`` queues one task per study, ``migrate run``
moves and verifies each, ``migrate status``/``report`` say so; a worker that died
mid-study is taken over once its lease expires; a source outside its time window makes
the run wait, failing nothing; an instance the source cannot send is retried once, then
named in the report.

Each test has a dcmqrscp of its own (its inventory holds only the test's studies; it
starts in about a second), a state store of its own (SQLite) and studies of its own.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
import yaml
from devservers.dcmqrscp import Dcmqrscp, store_files
from typer.testing import CliRunner

from bridge.cli import app as cli_app
from bridge.clock import ManualClock
from bridge.config import ArchiveSettings
from bridge.migration.engine import open_migrator, run_of
from bridge.migration.report import report_rows
from bridge.migration.stow import stow_study
from bridge.migration.study import migration_kind
from bridge.migration.throttle import seconds_until_open
from bridge.sections.migration import LegacySourceSettings, MigrationSettings, TimeWindow
from bridge.state import StateStore, open_store
from bridge.state.tasks import Task
from samples.generator import GeneratedStudy, generate_studies
from tests.integration.migration.legacy_servers import (
    archive_settings,
    archive_sop_uids,
    loaded_uids,
    settings_for,
    write_files,
)
from tests.support.waits import wait_until

SOURCE = "engine-q"
KIND = migration_kind(SOURCE)


@dataclass
class EngineLegacy:
    server: Dcmqrscp
    settings: LegacySourceSettings

    def load(self, count: int, folder: Path) -> list[GeneratedStudy]:
        """``count`` studies with identifiers of their own, loaded into the source."""
        # a seed of its own: new UIDs, unseen by the shared archive
        studies = list(generate_studies(count, seed=uuid.uuid4().int % 2**32,
                                        profile="small", id_prefix="MIGE"))
        folder.mkdir(parents=True, exist_ok=True)
        store_files(write_files(studies, folder), host=self.server.host,
                    port=self.server.port, called_ae=self.server.ae_title)
        return studies


@pytest.fixture
def legacy() -> Iterator[EngineLegacy]:
    with Dcmqrscp(ae_title="LEGACY-ENG") as server:
        yield EngineLegacy(server, settings_for(SOURCE, server.ae_title, server.port))


def task_of(store: StateStore, study: GeneratedStudy) -> Task:
    task = store.task(KIND, study.study_uid)
    assert task is not None
    return task


async def test_inventory_then_run_migrates_every_study_verified_and_reports_it(
        legacy: EngineLegacy, orthanc: Any, tmp_path: Path) -> None:
    studies = legacy.load(3, tmp_path / "loaded")
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump({
        "archives": [{"name": "orthanc", "base_url": orthanc.dicomweb_url,
                      "auth": {"kind": "basic", "username": orthanc.username,
                               "password": orthanc.password}}],
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "migration": {"sources": [legacy.settings.model_dump(mode="json")],
                      "spool_dir": str(tmp_path / "spool"), "stow_chunk": 2},
    }))
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(cli_app, ["migrate", *args, "--source", SOURCE,
                                       "--config", str(config)])

    # one C-FIND window for all the source's dates (each window is an association)
    found = await asyncio.to_thread(cli, "inventory", "--window-days", "73000")
    assert found.exit_code == 0, found.output
    assert "found 3 studies" in found.output and "queued 3" in found.output
    ran = await asyncio.to_thread(cli, "run", "--workers", "2")
    assert ran.exit_code == 0, ran.output
    status = await asyncio.to_thread(cli, "status")
    assert "queued 0, in progress 0" in status.output and "failed 0" in status.output

    reported = await asyncio.to_thread(cli, "report", "--format", "json")
    assert reported.exit_code == 0, reported.output
    rows = {r["study_uid"]: r for r in json.loads(reported.stdout)["studies"]}
    for study in studies:
        row = rows[study.study_uid]
        expected = loaded_uids(study)
        assert (row["state"], row["instances"], row["archive_instances"], row["missing"]) \
            == ("migrated", len(expected), len(expected), [])
        assert archive_sop_uids(orthanc, study.study_uid) == expected
    assert not any((tmp_path / "spool" / SOURCE).iterdir())  # spool emptied

    # a second walk queues nothing new
    again = await asyncio.to_thread(cli, "inventory", "--window-days", "73000")
    assert again.exit_code == 0 and "queued 0" in again.output

    as_csv = await asyncio.to_thread(cli, "report")
    assert as_csv.stdout.splitlines()[0].startswith("study_uid,state,attempts")


@pytest.fixture
async def migrator_parts(legacy: EngineLegacy, orthanc: Any, tmp_path: Path
                         ) -> AsyncIterator[tuple[MigrationSettings, ArchiveSettings]]:
    yield (MigrationSettings(sources=[legacy.settings], spool_dir=tmp_path / "spool",
                             lease_seconds=60),
           archive_settings(orthanc))


async def test_a_study_whose_worker_died_is_taken_over_after_its_lease(
        legacy: EngineLegacy, orthanc: Any, tmp_path: Path,
        migrator_parts: tuple[MigrationSettings, ArchiveSettings]) -> None:
    migration, archive = migrator_parts
    clock = ManualClock.from_system()
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock.now)
    (study,) = legacy.load(1, tmp_path / "loaded")
    store.enqueue_task(KIND, study.study_uid)
    async with open_migrator(legacy.settings, migration=migration, archive=archive,
                             clock=clock) as migrator:
        # a worker claims the study, stores one instance, and dies (SIGKILL: no outcome)
        (dead,) = store.claim_tasks(KIND, limit=1, worker="dead:1", lease_seconds=60)
        got = await migrator.source.get_study(study.study_uid)
        await stow_study(migrator.stow, study.study_uid, got.received[:1])
        assert len(archive_sop_uids(orthanc, study.study_uid)) == 1

        run = run_of(store, migrator, migration, worker_id="alive:2")
        assert await run.worker.run_once() == 0  # the dead worker's lease holds
        assert task_of(store, study).status == "leased"

        clock.advance(61)  # the dead worker's lease expires
        counts = await run_of(store, migrator, migration, worker_id="alive:2").drain()
    task = task_of(store, study)
    store.close()
    assert counts.migrated == 1
    assert (task.status, task.attempts, (task.result or {}).get("instances")) == (
        "done", 2, len(loaded_uids(study)))
    assert dead.attempts == 1
    # the re-run stored again what the dead one had stored: no duplicate, none lost
    assert archive_sop_uids(orthanc, study.study_uid) == loaded_uids(study)


def test_a_worker_killed_mid_run_is_resumed_by_the_next_run(
        legacy: EngineLegacy, orthanc: Any, tmp_path: Path) -> None:
    studies = legacy.load(2, tmp_path / "loaded")
    # 0.2 instances/s: the second study waits at least 5 s for its slot, leased: the
    # worker is killed there (SIGKILL: nothing recorded); leases of 2 s
    source = legacy.settings.model_copy(update={"instances_per_second": 0.2})
    state = tmp_path / "state.db"
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump({
        "archives": [{"name": "orthanc", "base_url": orthanc.dicomweb_url,
                      "auth": {"kind": "basic", "username": orthanc.username,
                               "password": orthanc.password}}],
        "state": {"url": f"sqlite:///{state}"},
        "migration": {"sources": [source.model_dump(mode="json")], "workers": 1,
                      "lease_seconds": 2, "spool_dir": str(tmp_path / "spool")},
    }))
    store = open_store(f"sqlite:///{state}")
    for study in studies:
        store.enqueue_task(KIND, study.study_uid)
    command = [str(Path(sys.executable).with_name("imaging-bridge")), "migrate", "run",
               "--source", SOURCE, "--config", str(config)]
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        def one_done_one_leased() -> list[Task] | None:
            tasks = sorted((task_of(store, s) for s in studies), key=lambda t: t.status)
            return tasks if [t.status for t in tasks] == ["done", "leased"] else None

        done, leased = wait_until(one_done_one_leased, timeout=60, every=0.05,
                                  what="one study migrated and the next one leased")
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert leased.lease_owner is not None and leased.lease_owner.endswith(f":{worker.pid}")
    assert worker.returncode == -signal.SIGKILL

    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120,
                             check=False)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "migrated 1 studies this run" in resumed.stdout
    after = {s.study_uid: task_of(store, s) for s in studies}
    store.close()
    assert [after[done.key].attempts, after[leased.key].attempts] == [1, 2]
    for study in studies:
        assert after[study.study_uid].status == "done"
        assert archive_sop_uids(orthanc, study.study_uid) == loaded_uids(study)


async def test_outside_its_time_window_the_source_waits_and_nothing_fails(
        legacy: EngineLegacy, orthanc: Any, tmp_path: Path,
        migrator_parts: tuple[MigrationSettings, ArchiveSettings]) -> None:
    migration, archive = migrator_parts
    clock = ManualClock.from_system()
    local = clock.now().astimezone().replace(tzinfo=None)
    opens = (local + timedelta(hours=2)).replace(second=0, microsecond=0)
    window = TimeWindow(start=opens.time(), end=(opens + timedelta(hours=1)).time())
    source = legacy.settings.model_copy(update={"time_windows": [window]})
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}", clock=clock.now)
    (study,) = legacy.load(1, tmp_path / "loaded")
    store.enqueue_task(KIND, study.study_uid)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        # while the run waits, the study is neither claimed nor failed
        task = task_of(store, study)
        assert (task.status, task.attempts) == ("due", 0)
        slept.append(seconds)
        # the workers sleep side by side: the first to wake finds the window open, and
        # so do the others (the clock moves once)
        if seconds_until_open(source, clock.now()) > 0:
            clock.advance(seconds)

    async with open_migrator(source, migration=migration, archive=archive,
                             clock=clock) as migrator:
        counts = await run_of(store, migrator, migration, sleep=sleep).drain()
    task = task_of(store, study)
    store.close()
    # each of the run's workers waited once, until the window opened
    assert slept == [pytest.approx((opens - local).total_seconds(), abs=1)] \
        * migration.workers
    assert counts.migrated == 1 and counts.closed_seconds == sum(slept)
    assert (task.status, task.attempts) == ("done", 1)
    assert task.done_at is not None
    assert window.allows(task.done_at.astimezone().replace(tzinfo=None).time())


async def test_an_instance_the_source_cannot_send_is_retried_once_then_reported(
        legacy: EngineLegacy, orthanc: Any, tmp_path: Path,
        migrator_parts: tuple[MigrationSettings, ArchiveSettings]) -> None:
    migration, archive = migrator_parts
    study = next(s for s in legacy.load(3, tmp_path / "loaded")
                 if len(loaded_uids(s)) >= 2)
    # the source's index still lists the instance, its file is gone (a lost file on a
    # legacy PACS): every C-GET of it fails as a sub-operation
    lost = loaded_uids(study)[0]
    lost_file = next(p for p in legacy.server.storage.rglob("*") if p.is_file()
                     and p.name != "index.dat"
                     and _sop_uid(p) == lost)
    lost_file.unlink()
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    store.enqueue_task(KIND, study.study_uid)
    async with open_migrator(legacy.settings, migration=migration,
                             archive=archive) as migrator:
        counts = await run_of(store, migrator, migration).drain()
    (row,) = [r for r in report_rows(store, SOURCE) if r.study_uid == study.study_uid]
    store.close()
    assert counts.migrated == 0
    assert (row.state, row.missing) == ("failed", (lost,))
    assert row.error is not None and "source failed to send 1" in row.error
    # the others are in the archive: nothing but the lost one is missing
    assert archive_sop_uids(orthanc, study.study_uid) == loaded_uids(study)[1:]


def _sop_uid(path: Path) -> str | None:
    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    except Exception:
        return None




def metadata(orthanc: Any, study_uid: str) -> list[dict[str, Any]]:
    """The study's instances as the archive returns them (WADO-RS metadata)."""
    resp = httpx.get(f"{orthanc.dicomweb_url}/studies/{study_uid}/metadata",
                     auth=(orthanc.username, orthanc.password), timeout=30)
    resp.raise_for_status()
    result: list[dict[str, Any]] = resp.json()
    return result


def value(item: dict[str, Any], tag: str) -> Any:
    values = (item.get(tag) or {}).get("Value") or []
    return values[0] if values else None


async def test_coercion_is_visible_in_the_archive_with_the_originals_kept(
        legacy: EngineLegacy, orthanc: Any, tmp_path: Path,
        migrator_parts: tuple[MigrationSettings, ArchiveSettings]) -> None:
    migration, archive = migrator_parts
    (study,) = legacy.load(1, tmp_path / "loaded")
    truth = study.truth
    enterprise_id = "ENT" + truth.patient_id  # the cross-reference's target
    rules = tmp_path / "migration.yaml"
    rules.write_text(yaml.safe_dump({"version": 1, "modifying_system": "BRIDGE-MIG-TEST",
                                     "sources": {SOURCE: {
                                         "issuer_of_patient_id": {"value": "MIG-SITE"},
                                         "accession_prefix": "M-",
                                         "patient_ids": {truth.patient_id: enterprise_id}}}}))
    migration = migration.model_copy(update={"coercion_file": rules})
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    store.enqueue_task(KIND, study.study_uid)
    async with open_migrator(legacy.settings, migration=migration,
                             archive=archive) as migrator:
        counts = await run_of(store, migrator, migration).drain()
    result = task_of(store, study).result or {}
    store.close()
    assert counts.migrated == 1
    assert result["coerced"] == result["instances"] == len(loaded_uids(study))

    instances = metadata(orthanc, study.study_uid)
    assert sorted(value(i, "00080018") for i in instances) == loaded_uids(study)
    for item in instances:
        assert (value(item, "00100020"), value(item, "00100021"), value(item, "00080050")) \
            == (enterprise_id, "MIG-SITE", "M-" + truth.accession_number)
        # Original Attributes Sequence (0400,0561), PS3.3 C.12.1.1.9
        (original,) = item["04000561"]["Value"]
        assert (value(original, "04000563"), value(original, "04000565"),
                value(original, "04000564")) == ("BRIDGE-MIG-TEST", "COERCE",
                                                 legacy.settings.ae_title)
        assert value(original, "04000562")  # Attribute Modification DateTime
        (before,) = original["04000550"]["Value"]
        assert (value(before, "00100020"), value(before, "00100021"),
                value(before, "00080050")) == (truth.patient_id, truth.patient_issuer,
                                               truth.accession_number)
