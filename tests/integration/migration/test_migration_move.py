"""C-MOVE transfers of the migration engine (issue 15) from a real legacy PACS (DCMTK
dcmqrscp, its HostTable naming the destinations):

* *through the bridge*: the source moves each study to the bridge's receiver (a C-STORE
  SCP), which hands it to the STOW-RS into the shared Orthanc archive;
* *direct*: the source moves each study straight to an archive Orthanc's DICOM AE (the
  shared stack's Orthanc has no DICOM port, so this module starts one), and the bridge
  only verifies it by QIDO-RS;
* a destination the source does not know is a refusal of the set-up (Waiting: no study is
  failed for it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import devstack
import pytest
from devservers.dcmqrscp import Dcmqrscp, store_files

from bridge.config import ArchiveSettings
from bridge.errors import AuthError
from bridge.migration.client import LegacySource
from bridge.migration.engine import open_migrator, run_of
from bridge.migration.errors import LegacyRefused
from bridge.migration.study import migration_kind
from bridge.sections.migration import (
    LegacySourceSettings,
    MigrationSettings,
    MoveReceiverSettings,
)
from bridge.state import open_store
from samples.generator import GeneratedStudy, generate_studies
from tests.integration.migration.legacy_servers import (
    RECEIVER_AE,
    LoadedLegacy,
    archive_settings,
    archive_sop_uids,
    loaded_uids,
    settings_for,
    write_files,
)
from tests.support.ports import free_port

ARCHIVE_AE = "ARCHIVE-DCM"


@dataclass(frozen=True)
class MoveSetUp:
    """A dcmqrscp that may move to the bridge's receiver and to the archive's DICOM AE."""

    server: Dcmqrscp
    receiver_port: int
    archive: Any  # the Orthanc with its DICOM server on

    def source(self, name: str, **changes: Any) -> LegacySourceSettings:
        settings = settings_for(name, self.server.ae_title, self.server.port)
        return settings.model_copy(update=changes)

    def load(self, count: int, folder: Path) -> list[GeneratedStudy]:
        studies = list(generate_studies(count, seed=uuid.uuid4().int % 2**32,
                                        profile="small", id_prefix="MIGM"))
        folder.mkdir(parents=True, exist_ok=True)
        store_files(write_files(studies, folder), host=self.server.host,
                    port=self.server.port, called_ae=self.server.ae_title)
        return studies


@pytest.fixture(scope="module")
def move_set_up() -> Iterator[MoveSetUp]:
    archive_port, receiver_port = free_port(), free_port()
    config = {"DicomServerEnabled": True, "DicomPort": archive_port, "DicomAet": ARCHIVE_AE}
    with devstack.Orthanc(extra_config=config) as archive, Dcmqrscp(
            ae_title="LEGACY-MOVE",
            move_destinations={RECEIVER_AE: ("127.0.0.1", receiver_port),
                               ARCHIVE_AE: ("127.0.0.1", archive_port)}) as server:
        yield MoveSetUp(server, receiver_port, archive)


async def migrate(source: LegacySourceSettings, migration: MigrationSettings,
                  archive: ArchiveSettings, studies: list[GeneratedStudy],
                  tmp_path: Path) -> dict[str, Any]:
    """Queue ``studies`` and drain the queue; each study's task."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    kind = migration_kind(source.name)
    for study in studies:
        store.enqueue_task(kind, study.study_uid)
    async with open_migrator(source, migration=migration, archive=archive) as migrator:
        await run_of(store, migrator, migration).drain()
    tasks = {s.study_uid: store.task(kind, s.study_uid) for s in studies}
    store.close()
    return tasks


async def test_studies_moved_through_the_bridge_are_stowed_and_verified(
        move_set_up: MoveSetUp, orthanc: Any, tmp_path: Path) -> None:
    studies = move_set_up.load(2, tmp_path / "loaded")
    source = move_set_up.source("move-bridge", transfer="c-move")
    migration = MigrationSettings(
        sources=[source], spool_dir=tmp_path / "spool",
        receiver=MoveReceiverSettings(ae_title=RECEIVER_AE, host="127.0.0.1",
                                      port=move_set_up.receiver_port))
    tasks = await migrate(source, migration, archive_settings(orthanc), studies, tmp_path)
    for study in studies:
        task = tasks[study.study_uid]
        assert task is not None and task.status == "done", task
        assert task.result is not None
        assert task.result["stored"] == task.result["instances"] == len(loaded_uids(study))
        assert archive_sop_uids(orthanc, study.study_uid) == loaded_uids(study)


async def test_orthanc_as_legacy_moves_through_the_bridge_and_serves_c_get(
        orthanc_legacy: LoadedLegacy, move_receiver_port: int, orthanc: Any,
        tmp_path: Path) -> None:
    # the second legacy implementation: Orthanc's DICOM server, the receiver in its
    # DicomModalities
    legacy = orthanc_legacy.settings
    studies = list(generate_studies(3, seed=uuid.uuid4().int % 2**32, profile="small",
                                    id_prefix="MIGN"))
    store_files(write_files(studies, tmp_path), host=legacy.host, port=legacy.port,
                called_ae=legacy.ae_title)
    receiver = MoveReceiverSettings(ae_title=RECEIVER_AE, host="127.0.0.1",
                                    port=move_receiver_port)
    archive = archive_settings(orthanc)
    for transfer, batch in (("c-move", studies[:2]), ("c-get", studies[2:])):
        source = legacy.model_copy(update={"name": f"orthanc-{transfer}",
                                           "transfer": transfer})
        migration = MigrationSettings(sources=[source], spool_dir=tmp_path / "spool",
                                      receiver=receiver)
        tasks = await migrate(source, migration, archive, batch, tmp_path / transfer)
        for study in batch:
            task = tasks[study.study_uid]
            assert task is not None and task.status == "done", (transfer, task)
            assert archive_sop_uids(orthanc, study.study_uid) == loaded_uids(study)


async def test_studies_moved_directly_to_the_archive_are_verified(
        move_set_up: MoveSetUp, tmp_path: Path) -> None:
    studies = move_set_up.load(2, tmp_path / "loaded")
    source = move_set_up.source("move-direct", transfer="c-move-direct",
                                move_destination=ARCHIVE_AE)
    migration = MigrationSettings(sources=[source], spool_dir=tmp_path / "spool")
    archive = move_set_up.archive
    tasks = await migrate(source, migration, archive_settings(archive), studies, tmp_path)
    for study in studies:
        task = tasks[study.study_uid]
        assert task is not None and task.status == "done", task
        assert task.result is not None and task.result["stored"] == len(loaded_uids(study))
        assert archive_sop_uids(archive, study.study_uid) == loaded_uids(study)


async def test_a_destination_the_source_does_not_know_is_a_refusal_not_a_failure(
        move_set_up: MoveSetUp, tmp_path: Path) -> None:
    (study,) = move_set_up.load(1, tmp_path / "loaded")
    legacy = LegacySource(move_set_up.source("move-unknown"))
    with pytest.raises(LegacyRefused, match="NOBODY") as caught:
        await legacy.move_study(study.study_uid, destination="NOBODY")
    assert isinstance(caught.value, AuthError)


def test_the_receiver_takes_only_instances_a_move_expects(tmp_path: Path) -> None:
    from devservers.process import DevStackError

    from bridge.migration.receiver import MoveReceiver

    study = next(generate_studies(1, seed=1507, profile="small", id_prefix="MIGR"))
    files = write_files([study], tmp_path)
    expected = str(next(study.instances()).SOPInstanceUID)
    inbox_dir = tmp_path / "inbox"
    inbox_dir.mkdir()
    with MoveReceiver(ae_title=RECEIVER_AE, host="127.0.0.1") as receiver:
        with pytest.raises(DevStackError):  # nobody expects it: refused (0xC000)
            store_files(files[:1], host="127.0.0.1", port=receiver.port,
                        called_ae=RECEIVER_AE)
        with receiver.expect([expected], inbox_dir) as inbox:
            store_files(files[:1], host="127.0.0.1", port=receiver.port,
                        called_ae=RECEIVER_AE)
    assert [i.sop_instance_uid for i in inbox.received] == [expected]
    # kept as received: the data set of the file sent (file meta aside)
    assert inbox.received[0].part10().endswith(files[0].read_bytes()[-64:])
