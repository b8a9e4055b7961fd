"""The inventory walker halves a capped date window until every study is listed."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bridge.migration.client import LegacySource, StudyPage
from bridge.migration.errors import LegacyResultCapped
from bridge.migration.inventory import DateWindow, walk_inventory
from bridge.migration.records import StudyRecord
from bridge.sections.migration import LegacySourceSettings


class CappedSource(LegacySource):
    """A source holding ``studies`` that answers at most ``cap`` of them per C-FIND, and
    says so (as a Cancel status does)."""

    def __init__(self, studies: list[StudyRecord], cap: int) -> None:
        super().__init__(LegacySourceSettings(name="capped", ae_title="CAPPED",
                                              host="127.0.0.1", port=104))
        self.studies = studies
        self.cap = cap
        self.asked: list[DateWindow] = []

    async def find_studies(self, *, start: date, end: date) -> StudyPage:
        self.asked.append(DateWindow(start, end))
        hits = [s for s in self.studies if s.study_date and start <= s.study_date <= end]
        return StudyPage(hits[: self.cap], capped=len(hits) > self.cap)


def study(n: int, day: date) -> StudyRecord:
    return StudyRecord(study_uid=f"1.2.{n}", patient_id=None, issuer_of_patient_id=None,
                       study_date=day, accession_number=None, modalities=(),
                       series_count=None, instance_count=None)


async def collect(source: LegacySource, start: date, end: date, days: int) -> list[str]:
    return [s.study_uid async for s in walk_inventory(source, start=start, end=end,
                                                      window_days=days)]


async def test_capped_window_is_split_and_every_study_found() -> None:
    first = date(2024, 1, 1)
    studies = [study(n, first + timedelta(days=n % 10)) for n in range(12)]
    source = CappedSource(studies, cap=3)
    found = await collect(source, first, first + timedelta(days=9), days=10)
    assert sorted(found) == sorted(s.study_uid for s in studies)
    assert len(found) == len(set(found))
    assert source.asked[0] == DateWindow(first, first + timedelta(days=9))
    assert len(source.asked) > 1


async def test_windows_are_asked_oldest_first_without_overlap() -> None:
    first = date(2024, 1, 1)
    source = CappedSource([], cap=3)
    assert await collect(source, first, first + timedelta(days=6), days=3) == []
    assert source.asked == [DateWindow(first, first + timedelta(days=2)),
                            DateWindow(first + timedelta(days=3), first + timedelta(days=5)),
                            DateWindow(first + timedelta(days=6), first + timedelta(days=6))]


async def test_a_single_day_over_the_cap_is_an_error_not_a_short_list() -> None:
    day = date(2024, 1, 1)
    source = CappedSource([study(n, day) for n in range(4)], cap=3)
    with pytest.raises(LegacyResultCapped, match="2024-01-01"):
        await collect(source, day, day + timedelta(days=3), days=4)
