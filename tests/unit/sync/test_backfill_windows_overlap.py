"""Backfill: adaptive StudyDate windows, window QIDOs in flight at once, and the sync
overlapping the scan; against the in-process synthetic archive and FHIR sink of the
benchmarks (real ``DicomwebClient``, ``SyncRunner`` and SQLite store)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings, FhirSettings, SyncSettings
from bridge.fhir.client import FhirClient
from bridge.mapping import MappingEngine, load_mapping
from bridge.state import StateStore, open_store
from bridge.sync.backfill import (
    backfill,
    checkpoint_name,
    mark_history,
    next_window_days,
)
from bridge.sync.runner import SyncRunner
from tests.bench.fakes import ARCHIVE_URL, FHIR_URL, FastFhirSink, SyntheticArchive
from tests.unit.sync.fakes import REPO_ROOT

NAME = "synthetic"
LAST_DAY = date(2024, 6, 30)


@pytest.fixture(scope="module")
def engine() -> MappingEngine:
    return MappingEngine(load_mapping([REPO_ROOT / "mappings" / "default.yaml"]))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


class SlowArchive:
    """The synthetic archive, each answer delayed by a random few milliseconds, so
    concurrent window QIDOs complete out of order."""

    def __init__(self, archive: SyntheticArchive, *, seed: int = 3, most: float = 0.004):
        self.archive = archive
        self.rng = random.Random(seed)
        self.most = most
        self.qido_windows: list[str] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(self.rng.random() * self.most)
        if request.url.path.endswith("/studies"):
            self.qido_windows.append(request.url.params.get("StudyDate", ""))
        return self.archive._handle(request)


def client(archive: SyntheticArchive | SlowArchive, **settings: Any) -> DicomwebClient:
    handler = archive.handle if isinstance(archive, SlowArchive) else archive._handle
    return DicomwebClient(ArchiveSettings(name=NAME, base_url=ARCHIVE_URL, **settings),
                          transport=httpx.MockTransport(handler))


class FailingStore:
    """A store whose ``mark_many_due`` fails from its ``fail_at``-th call on: a crash
    in the middle of the scan."""

    def __init__(self, store: StateStore, fail_at: int) -> None:
        self._store = store
        self.calls = 0
        self.fail_at = fail_at

    def mark_many_due(self, *args: Any, **kwargs: Any) -> int:
        self.calls += 1
        if self.calls >= self.fail_at:
            raise OSError("disk gone")
        return self._store.mark_many_due(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def queued(store: StateStore, archive: SyntheticArchive) -> set[str]:
    """The archive's studies the store holds a row for."""
    return set(store.fingerprints(NAME, [archive.uid(i) for i in range(archive.count)]))


def done_through(store: StateStore, start: date, end: date) -> date | None:
    raw = store.get_checkpoint(checkpoint_name(NAME, start, end))
    return date.fromisoformat(json.loads(raw)["done_through"]) if raw else None


# --- window sizes ---------------------------------------------------------------------------


def test_window_grows_when_sparse_and_shrinks_when_dense() -> None:
    assert next_window_days(30, 0, target=250) == 120  # empty: grow, but at most 4x
    assert next_window_days(30, 10, target=250) == 120  # sparse: 750 by density, capped
    assert next_window_days(30, 125, target=250) == 60
    assert next_window_days(30, 1000, target=250) == 7
    assert next_window_days(1, 5000, target=250) == 1  # never below a day


async def test_adaptive_windows_cross_empty_decades_in_a_few_requests(
    store: StateStore,
) -> None:
    archive = SyntheticArchive(600, per_day=10, last_day=LAST_DAY)
    start = date(1980, 1, 1)
    async with client(archive) as dicomweb:
        marked = await mark_history(dicomweb, store, start=start, end=LAST_DAY,
                                    window_days=30)
    assert marked == 600
    assert queued(store, archive) == {archive.uid(i) for i in range(600)}
    assert store.counts()["due"] == 600
    # 44 years in 30-day windows would be 540 requests
    assert archive.requests["qido-studies"] <= 20, archive.requests
    assert done_through(store, start, LAST_DAY) == LAST_DAY


async def test_fixed_windows_are_kept_when_adaptive_is_off(store: StateStore) -> None:
    archive = SyntheticArchive(50, per_day=10, last_day=LAST_DAY)
    start = LAST_DAY - timedelta(days=89)
    async with client(archive) as dicomweb:
        marked = await mark_history(dicomweb, store, start=start, end=LAST_DAY,
                                    window_days=30, adaptive=False)
    assert marked == 50
    assert archive.requests["qido-studies"] == 3


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_capped_archive_splits_windows_and_marks_every_study_once(
    store: StateStore, concurrency: int
) -> None:
    # 40 studies a day, a cap of 100: any window over two days is capped and halved
    archive = SlowArchive(SyntheticArchive(1200, per_day=40, last_day=LAST_DAY))
    start = archive.archive.first_day - timedelta(days=400)
    async with client(archive, max_results=100, page_size=100) as dicomweb:
        marked = await mark_history(dicomweb, store, start=start, end=LAST_DAY,
                                    window_days=30, concurrency=concurrency)
    assert marked == 1200
    assert queued(store, archive.archive) == {archive.archive.uid(i) for i in range(1200)}
    assert store.counts()["due"] == 1200


async def test_one_day_over_the_cap_is_an_error_naming_the_setting(store: StateStore) -> None:
    archive = SyntheticArchive(30, per_day=30, last_day=LAST_DAY)
    async with client(archive, max_results=10, page_size=10) as dicomweb:
        with pytest.raises(RuntimeError, match="raise max_results"):
            await mark_history(dicomweb, store, start=LAST_DAY, end=LAST_DAY,
                               window_days=1, concurrency=2)


# --- checkpoints with windows in flight -----------------------------------------------------


@pytest.mark.parametrize("fail_at", [2, 5, 9])
async def test_crash_mid_scan_checkpoints_only_marked_windows_and_resume_finishes(
    store: StateStore, fail_at: int
) -> None:
    archive = SlowArchive(SyntheticArchive(900, per_day=3, last_day=LAST_DAY))
    start, every = archive.archive.first_day, {archive.archive.uid(i) for i in range(900)}
    failing = FailingStore(store, fail_at)
    async with client(archive, page_size=20) as dicomweb:  # many small windows
        with pytest.raises(OSError):
            await mark_history(dicomweb, failing, start=start, end=LAST_DAY,  # type: ignore[arg-type]
                               window_days=20, concurrency=4)
        through = done_through(store, start, LAST_DAY)
        assert through is not None and through < LAST_DAY
        # every study up to the checkpoint is durably due: a resume may skip those days
        upto = {archive.archive.uid(i) for i in range(900)
                if archive.archive.date_of(i) <= through}
        assert upto <= queued(store, archive.archive)
        asked = len(archive.qido_windows)
        await mark_history(dicomweb, store, start=start, end=LAST_DAY, window_days=20,
                           concurrency=4)
    assert done_through(store, start, LAST_DAY) == LAST_DAY
    # the resume asked only for days after the checkpoint
    assert all(w[:8] > f"{through:%Y%m%d}" for w in archive.qido_windows[asked:])
    assert queued(store, archive.archive) == every
    assert store.counts()["due"] == 900


# --- the sync overlapping the scan ----------------------------------------------------------


@dataclass
class Bridge:
    runner: SyncRunner
    archive: SlowArchive
    sink: FastFhirSink
    dicomweb: DicomwebClient


@pytest.fixture
async def bridge(store: StateStore, engine: MappingEngine) -> AsyncIterator[Bridge]:
    archive = SlowArchive(SyntheticArchive(400, per_day=4, last_day=LAST_DAY), most=0.01)
    sink = FastFhirSink()
    fhir_settings = FhirSettings(base_url=FHIR_URL, batch_size=10)
    dicomweb = client(archive, page_size=20)  # small windows: a long scan
    fhir = FhirClient(fhir_settings, transport=sink.transport())
    runner = SyncRunner(store=store, archives={NAME: dicomweb}, fhir=fhir, engine=engine,
                        sync=SyncSettings(claim_batch=20), fhir_settings=fhir_settings,
                        worker_id="unit-backfill")
    yield Bridge(runner, archive, sink, dicomweb)
    await dicomweb.aclose()
    await fhir.aclose()


@pytest.mark.parametrize("workers", [1, 3])
async def test_sync_overlaps_the_scan_and_writes_each_study_once(
    bridge: Bridge, store: StateStore, workers: int
) -> None:
    synced_during_scan: list[int] = []
    scan_done = False

    def on_window(_name: str, p: Any) -> None:
        if p.days_done == p.days_total:
            nonlocal scan_done
            scan_done = True

    def on_batch(stats: Any) -> None:
        if not scan_done:
            synced_during_scan.append(stats.synced)

    first = bridge.archive.archive.first_day
    result = await backfill(bridge.runner, [bridge.dicomweb], start=first, end=LAST_DAY,
                            window_days=5, scan_concurrency=2, max_idle=5.0, poll=0.05,
                            workers=workers, on_window=on_window, on_batch=on_batch)
    assert result.marked == 400
    assert result.stats.synced == 400 and result.stats.failed == 0
    assert synced_during_scan, "nothing was synced before the scan ended: no overlap"
    assert store.counts()["synced"] == 400 and store.queue_depth() == 0
    assert bridge.sink.entries["PUT ImagingStudy"] == 400  # exactly once each


async def test_workers_wait_for_a_scan_that_marks_nothing_for_a_while(
    bridge: Bridge, store: StateStore
) -> None:
    # the first half of the range holds no study: the queue is empty for the whole first
    # part of the scan, and the workers must not take that for the end of the backfill
    first = bridge.archive.archive.first_day
    bridge.archive.most = 0.03  # 40 empty windows: ~0.6 s with nothing due
    result = await backfill(bridge.runner, [bridge.dicomweb], start=first - timedelta(days=120),
                            end=LAST_DAY, window_days=3, adaptive=False, max_idle=0.01,
                            poll=0.01)
    assert result.stats.synced == 400
    assert store.counts()["synced"] == 400


async def test_scan_error_stops_the_workers_and_a_rerun_completes_without_duplicates(
    bridge: Bridge, store: StateStore
) -> None:
    first = bridge.archive.archive.first_day
    failing = FailingStore(store, fail_at=6)
    with pytest.raises(OSError):
        await backfill(bridge.runner, [bridge.dicomweb], store=failing,  # type: ignore[arg-type]
                       start=first, end=LAST_DAY, window_days=5, max_idle=5.0, poll=0.01)
    written = bridge.sink.entries["PUT ImagingStudy"]
    assert store.counts()["leased"] == 0, "a worker stopped in the middle of a batch"
    result = await backfill(bridge.runner, [bridge.dicomweb], start=first, end=LAST_DAY,
                            window_days=5, max_idle=5.0, poll=0.01)
    assert store.counts()["synced"] == 400 and store.queue_depth() == 0
    assert written + result.stats.synced == 400
    assert bridge.sink.entries["PUT ImagingStudy"] == 400
