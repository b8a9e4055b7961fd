"""Backfill covers studies no StudyDate window finds, and waits out an archive outage
(issue 12 items 3 and 14), against an in-process archive that matches dates as a conformant
QIDO-RS server does (PS3.4 C.2.2.2.5: only valid dates match a range).  Time is injected:
no test sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings
from bridge.errors import ArchiveRejected, ArchiveUnavailable
from bridge.state import StateStore, open_store
from bridge.sync.backfill import DEFAULT_START, mark_history
from bridge.sync.patience import Patience
from bridge.sync.service import sweep_undated
from bridge.sync.undated import mark_undated, outside
from tests.support.fake_archive import FakeArchive

END = date(2026, 12, 1)
#: StudyDate values no window from DEFAULT_START to END finds; None = no StudyDate at all
ODD_DATES: dict[str, str | None] = {
    "1.2.826.0.1.1": "", "1.2.826.0.1.2": None, "1.2.826.0.1.3": "abcdefgh",
    "1.2.826.0.1.4": "19750612", "1.2.826.0.1.5": "20990101", "1.2.826.0.1.6": "20201301",
}
DATED = {"1.2.826.0.1.7": "20200115", "1.2.826.0.1.8": "20240630"}


def _row(uid: str, when: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"0020000D": {"vr": "UI", "Value": [uid]},
                           "00201208": {"vr": "IS", "Value": [1]}}
    if when is not None:
        row["00080020"] = {"vr": "DA", "Value": [when]} if when else {"vr": "DA"}
    return row


def date_archive(studies: dict[str, str | None], *, fail: int = 0) -> FakeArchive:
    """An archive of study-level rows (UID, StudyDate as given) whose next ``fail``
    requests are answered 503."""
    return FakeArchive(instances={uid: [_row(uid, when)] for uid, when in sorted(studies.items())},
                       fail_next=fail)


def client_of(archive: FakeArchive, *, page_size: int = 2) -> DicomwebClient:
    settings = ArchiveSettings(name="arc", base_url="http://archive.test/dicom-web",
                               page_size=page_size)
    return DicomwebClient(settings, transport=httpx.MockTransport(archive.handler))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    s = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield s
    s.close()


class FakeTime:
    """A monotonic clock and a sleep that only moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def patience(self, seconds: float) -> Patience:
        return Patience(seconds=seconds, base=1.0, cap=2.0, clock=self.clock, sleep=self.sleep)


def test_outside_means_no_valid_date_within_the_range() -> None:
    start, end = DEFAULT_START, END
    for uid, when in ODD_DATES.items():
        assert outside(_row(uid, when), start, end), when
    for uid, when in DATED.items():
        assert not outside(_row(uid, when), start, end), when
    assert not outside(_row("1.2.3", "1980.01.01"), start, end)  # ACR-NEMA form, PS3.5 6.2


async def test_windows_miss_odd_dates_and_the_undated_pass_marks_exactly_them(
    store: StateStore,
) -> None:
    archive = date_archive({**ODD_DATES, **DATED})
    async with client_of(archive) as client:
        windows = await mark_history(client, store, start=DEFAULT_START, end=END,
                                     window_days=3650)
        assert windows == len(DATED)  # the odd ones are in no window, silently
        result = await mark_undated(client, store, start=DEFAULT_START, end=END)
        assert (result.seen, result.marked, result.complete) == (len(ODD_DATES),
                                                                 len(ODD_DATES), True)
        # a second pass finds them known and unchanged: nothing more is due
        again = await mark_undated(client, store, start=DEFAULT_START, end=END)
        assert (again.seen, again.marked) == (len(ODD_DATES), 0)
    assert store.counts()["due"] == len(ODD_DATES) + len(DATED)
    for uid in ODD_DATES:
        assert store.get_study("arc", uid) is not None, uid
    # paged without a date filter: 8 studies, pages of 2
    assert [q.get("StudyDate") for q in archive.queries].count(None) == 2 * 5


async def test_scan_waits_out_an_archive_outage_and_resumes(store: StateStore) -> None:
    archive = date_archive({**ODD_DATES, **DATED}, fail=4)
    time = FakeTime()
    async with client_of(archive) as client:
        marked = await mark_history(client, store, start=DEFAULT_START, end=END,
                                    window_days=3650, patience=time.patience(30.0))
        undated = await mark_undated(client, store, start=DEFAULT_START, end=END,
                                     patience=time.patience(30.0))
    assert marked == len(DATED) and undated.marked == len(ODD_DATES)
    assert len(time.slept) == 4 and 0 < time.now < 30.0


async def test_scan_gives_up_once_the_outage_outlasts_its_patience(store: StateStore) -> None:
    archive = date_archive(dict(DATED), fail=1000)
    time = FakeTime()
    async with client_of(archive) as client:
        with pytest.raises(ArchiveUnavailable):
            await mark_history(client, store, start=DEFAULT_START, end=END, window_days=3650,
                               patience=time.patience(10.0))
    assert time.now == pytest.approx(10.0)  # waited the whole budget, not a second more
    assert store.get_checkpoint(f"backfill:arc:{DEFAULT_START}:{END}") is None


async def test_a_refused_credential_is_not_waited_for(store: StateStore) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401)

    time = FakeTime()
    settings = ArchiveSettings(name="arc", base_url="http://archive.test/dicom-web")
    async with DicomwebClient(settings, transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(ArchiveRejected):
            await mark_history(client, store, start=DEFAULT_START, end=END, window_days=3650,
                               patience=time.patience(60.0))
    assert time.slept == []


async def test_the_sync_services_sweep_marks_what_its_poll_window_never_sees(
    store: StateStore,
) -> None:
    # `imaging-bridge sync` polls the last days only and has no scheduled reconciliation
    archive = date_archive({**ODD_DATES, **DATED, "1.2.826.0.1.9": "20261130"})
    down = date_archive(dict(DATED), fail=1000)
    async with client_of(archive) as client, client_of(down) as broken:
        results = await sweep_undated([broken, client], store, window_days=2,
                                      today=lambda: date(2026, 12, 1))
    # the broken archive is skipped, the other one swept; 2026-11-30 is the poll's
    assert [(r.seen, r.marked) for r in results] == [(len(ODD_DATES) + len(DATED),) * 2]
    assert store.get_study("arc", "1.2.826.0.1.9") is None
    assert store.counts()["due"] == len(ODD_DATES) + len(DATED)
