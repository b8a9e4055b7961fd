"""The reserved real-time workers run on clients of their own (issue 19): a backfill that
fills the archive client's request slots does not hold up a STOW'd study's fetch.

The archive holds every metadata request of a bulk study until the test releases it, and
allows 2 requests in flight per client (``concurrency: 1``): the bulk batch takes both.
On a shared client the real-time study's fetch would wait for one of them; on its own
client it is fetched, mapped, written and recorded while they are still held.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.archive.client import DicomwebClient
from bridge.config import (
    ArchiveSettings,
    DeletePolicy,
    FhirSettings,
    MappingSettings,
    StateSettings,
    SyncSettings,
)
from bridge.fhir.client import FhirClient
from bridge.state import Lane, Status
from bridge.sync import service
from bridge.sync.runner import DrainStats
from bridge.sync.signal import WorkSignal
from tests.unit.sync.fakes import REPO_ROOT, FakeArchive, FakeFhir, studies

GUARD_S = 15.0
ARCHIVE = "main"


class HeldArchive:
    """:class:`FakeArchive` whose metadata requests for ``held`` studies wait for
    ``release``; ``holding`` counts them as they arrive."""

    def __init__(self, archive: FakeArchive, held: set[str]) -> None:
        self.archive = archive
        self.held = held
        self.arrived = 0
        self.two_held = asyncio.Event()
        self.release = asyncio.Event()

    async def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/metadata") and path.split("/")[-2] in self.held:
            self.arrived += 1
            if self.arrived >= 2:
                self.two_held.set()
            await self.release.wait()
        return self.archive.handler(request)


async def _open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, realtime_workers: int,
                archive: HeldArchive, fhir: FakeFhir) -> Any:
    def archive_client(settings: ArchiveSettings) -> DicomwebClient:
        return DicomwebClient(settings, transport=httpx.MockTransport(archive.handler))

    def fhir_client(settings: FhirSettings) -> FhirClient:
        return FhirClient(settings, transport=httpx.MockTransport(fhir.handler))

    monkeypatch.setattr(service, "DicomwebClient", archive_client)
    monkeypatch.setattr(service, "FhirClient", fhir_client)
    return service.open_sync(
        archives=[ArchiveSettings(name=ARCHIVE, base_url="http://archive.test/dicom-web",
                                  concurrency=1)],
        fhir=FhirSettings(base_url="http://fhir.test/fhir", batch_size=10),
        mapping=MappingSettings(files=[REPO_ROOT / "mappings" / "default.yaml"]),
        state=StateSettings(url=f"sqlite:///{tmp_path / 'state.db'}"),
        sync=SyncSettings(claim_batch=10, realtime_workers=realtime_workers),
        delete_policy=DeletePolicy.KEEP, endpoints=None, work=WorkSignal())


async def test_a_realtime_study_is_synced_while_the_bulk_batch_holds_every_archive_slot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generated = studies(5, seed=23)
    fake, fhir = FakeArchive(), FakeFhir()
    for s in generated:
        fake.add(s)
        fhir.patients.add(f"{s.truth.patient_system}|{s.truth.patient_id}")
    bulk, realtime = [s.study_uid for s in generated[:4]], generated[4].study_uid
    archive = HeldArchive(fake, set(bulk))
    async with await _open(tmp_path, monkeypatch, realtime_workers=1, archive=archive,
                           fhir=fhir) as ctx:
        ctx.store.mark_many_due(ARCHIVE, [(u, None) for u in bulk], reason="backfill")
        batch = asyncio.create_task(ctx.runner.run_once(DrainStats()))
        try:
            await asyncio.wait_for(archive.two_held.wait(), GUARD_S)  # both slots taken
            ctx.store.mark_due(ARCHIVE, realtime, reason="stow")
            claimed = await asyncio.wait_for(
                ctx.lane_runner.run_once(DrainStats(), lane=Lane.REALTIME), GUARD_S)
            assert claimed == 1
            view = ctx.store.get_study(ARCHIVE, realtime)
            assert view is not None and view.status is Status.SYNCED
            assert not batch.done()
        finally:
            archive.release.set()
        assert await asyncio.wait_for(batch, GUARD_S) == 4


async def test_without_reserved_workers_there_is_one_runner(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = HeldArchive(FakeArchive(), set())
    async with await _open(tmp_path, monkeypatch, realtime_workers=0, archive=archive,
                           fhir=FakeFhir()) as ctx:
        assert ctx.lane_runner is ctx.runner
    async with await _open(tmp_path, monkeypatch, realtime_workers=2, archive=archive,
                           fhir=FakeFhir()) as ctx:
        assert ctx.lane_runner is not ctx.runner
        assert ctx.lane_runner.archives[ARCHIVE] is not ctx.runner.archives[ARCHIVE]
        assert ctx.lane_runner.fhir is not ctx.runner.fhir
        assert ctx.lane_runner.store is ctx.store
