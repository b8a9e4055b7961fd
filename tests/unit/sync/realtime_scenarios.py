"""Real-time work does not wait behind bulk batches (issue 19, "Real time stays real time"):
the proof, written once and run against SQLite (``test_realtime_lane_runner.py``) and
PostgreSQL (``tests/integration/test_realtime_lane_runner_pg.py``).

Each scenario takes a real state store (``bulk_share`` 0.2) and pytest's ``monkeypatch``.
The runner is the real one; the archive and the FHIR server are the in-process fakes, the
FHIR one holding every batch that writes a bulk study until the test releases it, so "a
bulk batch in flight" is a state the test sets up, not a matter of timing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings, FhirSettings, SyncSettings
from bridge.fhir.client import FhirClient
from bridge.mapping import MappingEngine, load_mapping
from bridge.state import Completion, Lane, StateStore, Status
from bridge.sync.realtime_worker import realtime_worker_loop
from bridge.sync.runner import DrainStats, SyncRunner
from tests.unit.state.lane_scenarios import uids
from tests.unit.sync.fakes import ARCHIVE, FakeArchive, FakeFhir, studies

REPO_ROOT = Path(__file__).resolve().parents[3]
#: a failure guard only: every wait is for a condition the code under test brings about
GUARD_S = 15.0


def written_uid(url: str) -> str:
    """The study UID of an ``ImagingStudy?identifier=urn:dicom:uid|urn:oid:UID`` PUT."""
    return parse_qs(urlsplit(url).query)["identifier"][0].rsplit("urn:oid:", 1)[-1]


@dataclass
class HeldBulkFhir(FakeFhir):
    """:class:`FakeFhir` whose batches writing any of ``held`` (study UIDs) are answered
    only once ``release`` is set; ``holding`` is set when the first such batch arrives."""

    held: set[str] = field(default_factory=set)
    holding: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handler(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.rstrip("/").endswith("/fhir"):
            written = {written_uid(e["request"]["url"])
                       for e in json.loads(request.content)["entry"]
                       if e["request"]["method"] == "PUT"}
            if written & self.held:
                self.holding.set()
                await self.release.wait()
        return await super().handler(request)


@dataclass
class Setup:
    runner: SyncRunner
    fhir: HeldBulkFhir
    bulk: list[str]
    realtime: str
    #: set once the state store recorded the real-time study's confirmed write
    realtime_recorded: asyncio.Event

    def status(self, store: StateStore, uid: str) -> Status:
        view = store.get_study(ARCHIVE, uid)
        assert view is not None, uid
        return view.status

    async def aclose(self) -> None:
        self.fhir.release.set()
        for client in self.runner.archives.values():
            await client.aclose()
        await self.runner.fhir.aclose()


def setup(store: StateStore, monkeypatch: pytest.MonkeyPatch, *, bulk: int) -> Setup:
    """``bulk`` studies and one real-time study in the archive, their patients in the EHR,
    the bulk ones' FHIR writes held; nothing marked due yet."""
    generated = studies(bulk + 1, seed=19)
    archive = FakeArchive()
    fhir = HeldBulkFhir()
    for s in generated:
        archive.add(s)
        fhir.patients.add(f"{s.truth.patient_system}|{s.truth.patient_id}")
    fhir.held = {s.study_uid for s in generated[:bulk]}
    fhir_settings = FhirSettings(base_url="http://fhir.test/fhir", batch_size=10)
    runner = SyncRunner(
        store=store,
        archives={ARCHIVE: DicomwebClient(
            ArchiveSettings(name=ARCHIVE, base_url="http://archive.test/dicom-web"),
            transport=httpx.MockTransport(archive.handler))},
        fhir=FhirClient(fhir_settings, transport=httpx.MockTransport(fhir.handler)),
        engine=MappingEngine(load_mapping([REPO_ROOT / "mappings" / "default.yaml"])),
        sync=SyncSettings(claim_batch=10), fhir_settings=fhir_settings,
        worker_id="lane-worker")
    realtime = generated[bulk].study_uid
    recorded = asyncio.Event()
    complete_many = store.complete_many

    def watched(completions: Sequence[Completion], *, worker: str,
                follow_ups: Sequence[str] = ()) -> list[bool]:
        done = complete_many(completions, worker=worker, follow_ups=follow_ups)
        if any(c.study_uid == realtime for c in completions):
            loop.call_soon_threadsafe(recorded.set)
        return done

    loop = asyncio.get_running_loop()
    monkeypatch.setattr(store, "complete_many", watched)
    return Setup(runner, fhir, [s.study_uid for s in generated[:bulk]], realtime, recorded)


async def realtime_study_of_a_mixed_claim_is_synced_while_its_bulk_write_is_held(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One claim holds the real-time study and bulk studies: the real-time study is written
    and recorded while the FHIR batch of the bulk studies is still unanswered."""
    s = setup(store, monkeypatch, bulk=4)
    try:
        store.mark_many_due(ARCHIVE, [(u, None) for u in s.bulk], reason="backfill")
        store.mark_due(ARCHIVE, s.realtime, reason="stow")
        batch = asyncio.create_task(s.runner.run_once(DrainStats()))
        await asyncio.wait_for(s.fhir.holding.wait(), GUARD_S)
        await asyncio.wait_for(s.realtime_recorded.wait(), GUARD_S)

        assert s.status(store, s.realtime) is Status.SYNCED
        assert not batch.done()  # the bulk write is still in flight
        assert {s.status(store, u) for u in s.bulk} == {Status.LEASED}
        s.fhir.release.set()
        assert await asyncio.wait_for(batch, GUARD_S) == 5  # one claim held all five
        assert {s.status(store, u) for u in s.bulk} == {Status.SYNCED}
    finally:
        await s.aclose()


async def realtime_mark_is_synced_by_the_reserved_worker_while_a_bulk_batch_is_held(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk batch is in flight (its FHIR write held) when a real-time mark arrives: the
    reserved real-time worker, woken by the work signal, syncs the study before the bulk
    batch completes."""
    s = setup(store, monkeypatch, bulk=10)
    wake, stop = asyncio.Event(), asyncio.Event()
    stats = DrainStats()
    # idle of an hour: only the work signal can make it claim within the test
    worker = asyncio.create_task(realtime_worker_loop(s.runner, stats, wake=wake, stop=stop,
                                                      idle=3600))
    try:
        store.mark_many_due(ARCHIVE, [(u, None) for u in s.bulk], reason="backfill")
        batch = asyncio.create_task(s.runner.run_once(stats))
        await asyncio.wait_for(s.fhir.holding.wait(), GUARD_S)

        store.mark_due(ARCHIVE, s.realtime, reason="stow")
        wake.set()  # what the coalescer does after the STOW proxy's mark
        await asyncio.wait_for(s.realtime_recorded.wait(), GUARD_S)

        assert s.status(store, s.realtime) is Status.SYNCED
        assert not batch.done()
        assert {s.status(store, u) for u in s.bulk} == {Status.LEASED}
        s.fhir.release.set()
        assert await asyncio.wait_for(batch, GUARD_S) == len(s.bulk)
        assert {s.status(store, u) for u in s.bulk} == {Status.SYNCED}
    finally:
        stop.set()
        await s.aclose()
        await asyncio.wait_for(worker, GUARD_S)


def a_lane_claim_takes_only_its_lane_and_leaves_the_bulk_share_alone(
    store: StateStore,
) -> None:
    """The reserved worker's claim takes real-time rows only, however many bulk rows wait,
    and the mixed claims keep their bulk share as if it had not run."""
    assert store.bulk_share == 0.2
    backlog = uids("bulk", 300)
    store.mark_many_due(ARCHIVE, [(u, None) for u in backlog], reason="backfill")
    realtime = uids("rt", 40)
    for uid in realtime:
        store.mark_due(ARCHIVE, uid, reason="notification")

    only = store.claim(worker="rt", limit=8, lease_seconds=60, lane=Lane.REALTIME)
    assert len(only) == 8 and {c.lane for c in only} == {Lane.REALTIME}
    assert {c.study_uid for c in only} <= set(realtime)
    # one mixed claim of 10 keeps 2 for bulk work: the lane claim owed nothing
    mixed = store.claim(worker="mixed", limit=10, lease_seconds=60)
    assert [c.lane for c in mixed].count(Lane.BULK) == 2
    # the real-time lane drained, the lane claim finds nothing (no bulk row instead)
    rest = store.claim(worker="rt", limit=100, lease_seconds=60, lane=Lane.REALTIME)
    assert len(rest) == len(realtime) - 8 - 8
    assert store.claim(worker="rt", limit=10, lease_seconds=60, lane=Lane.REALTIME) == []
    bulk_only = store.claim(worker="b", limit=5, lease_seconds=60, lane=Lane.BULK)
    assert {c.lane for c in bulk_only} == {Lane.BULK}
