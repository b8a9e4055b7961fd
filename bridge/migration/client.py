"""An async client of one legacy source over DIMSE: C-ECHO and Study Root C-FIND at study,
series and instance level, returning typed records.

pynetdicom is blocking, so every exchange runs in a worker thread (``asyncio.to_thread``);
at most ``max_associations`` of them are open towards the source at once (the source's
own association limit is a shared resource of the hospital, PS3.8 7.1).  Errors are those
of :mod:`bridge.migration.errors`, translated in :mod:`bridge.migration.association`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydicom.dataset import Dataset

from bridge.migration import association, move, retrieve
from bridge.migration.association import FindAnswer
from bridge.migration.errors import LegacyResultCapped
from bridge.migration.move import MoveOutcome
from bridge.migration.queries import instance_query, series_query, study_query
from bridge.migration.records import (
    InstanceRecord,
    SeriesRecord,
    StudyRecord,
    instance_record,
    series_record,
    study_record,
)
from bridge.migration.retrieve import SUCCESS, StudyRetrieval
from bridge.sections.migration import LegacySourceSettings

__all__ = ["LegacySource", "StudyPage", "sop_classes_of"]

@dataclass(frozen=True, slots=True)
class StudyPage:
    """The studies one study-level C-FIND returned; ``capped``: the source cut the list
    short, so the query's range holds more than these."""

    studies: list[StudyRecord]
    capped: bool


class LegacySource:
    """One legacy PACS, from its :class:`LegacySourceSettings`."""

    def __init__(self, settings: LegacySourceSettings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.max_associations)

    @property
    def name(self) -> str:
        return self.settings.name

    async def _find(self, query: Dataset) -> FindAnswer:
        async with self._slots:
            return await asyncio.to_thread(association.find, self.settings, query)

    async def find(self, query: Dataset) -> FindAnswer:
        """A Study Root C-FIND with the identifier ``query`` as it is (the gateway's union)."""
        return await self._find(query)

    async def _find_all(self, query: Dataset, what: str) -> FindAnswer:
        """A query that cannot be split: a capped answer is an error, never a short list."""
        answer = await self._find(query)
        if answer.capped:
            raise LegacyResultCapped(
                f"legacy source {self.name!r} cut off its list of {what} at "
                f"{len(answer.identifiers)}; raise its C-FIND result limit")
        return answer

    async def echo(self) -> None:
        """C-ECHO: returns once the source answered Success."""
        async with self._slots:
            await asyncio.to_thread(association.echo, self.settings)

    async def find_studies(self, *, start: date, end: date) -> StudyPage:
        """Studies whose StudyDate lies in [start, end]."""
        answer = await self._find(study_query(start=start, end=end))
        return StudyPage([study_record(ds) for ds in answer.identifiers], answer.capped)

    async def find_study(self, study_uid: str) -> StudyRecord | None:
        """The study ``study_uid``, or None if the source does not have it."""
        answer = await self._find(study_query(study_uid=study_uid))
        records = [study_record(ds) for ds in answer.identifiers]
        return next((r for r in records if r.study_uid == study_uid), None)

    async def find_series(self, study_uid: str) -> list[SeriesRecord]:
        """The series of ``study_uid``."""
        answer = await self._find_all(series_query(study_uid), f"series of study {study_uid}")
        return [series_record(ds) for ds in answer.identifiers]

    async def find_instances(self, study_uid: str, series_uid: str) -> list[InstanceRecord]:
        """The instances of one series of ``study_uid``."""
        answer = await self._find_all(instance_query(study_uid, series_uid),
                                      f"instances of series {series_uid}")
        return [instance_record(ds) for ds in answer.identifiers]

    async def study_instances(self, study_uid: str) -> list[InstanceRecord]:
        """Every instance of ``study_uid``, series by series (the source's own list, the
        reference a verification compares the destination with)."""
        found: list[InstanceRecord] = []
        for series in await self.find_series(study_uid):
            found.extend(await self.find_instances(study_uid, series.series_uid))
        return found

    async def get_study(self, study_uid: str, *, spool: Path | None = None,
                        sop_classes: Sequence[str] | None = None) -> StudyRetrieval:
        """C-GET of ``study_uid`` (PS3.4 C.4.3) with the storage SOP classes its instances
        have at the source (``sop_classes``, else asked for by an instance-level C-FIND);
        instances in memory, or in the directory ``spool``."""
        if sop_classes is None:
            sop_classes = sop_classes_of(await self.study_instances(study_uid))
        async with self._slots:
            return await asyncio.to_thread(retrieve.get_study, self.settings, study_uid,
                                           sop_classes=sop_classes, spool=spool)

    async def get_instances(self, instances: Sequence[InstanceRecord], *,
                            spool: Path | None = None) -> StudyRetrieval:
        """C-GET of some ``instances`` of one study at IMAGE level, one C-GET per series
        (the received instances and failures of all of them together)."""
        if not instances:
            raise ValueError("no instances to retrieve")
        study_uid = instances[0].study_uid
        together = StudyRetrieval(study_uid)
        for series_uid, members in _by_series(instances).items():
            async with self._slots:
                got = await asyncio.to_thread(
                    retrieve.get_instances, self.settings, study_uid, series_uid,
                    [m.sop_instance_uid for m in members],
                    sop_classes=sop_classes_of(members), spool=spool)
            together.received += got.received
            together.failed += got.failed
            together.warnings += got.warnings
            if got.status != SUCCESS:
                together.status = got.status
        return together

    async def move_study(self, study_uid: str, *, destination: str) -> MoveOutcome:
        """C-MOVE of ``study_uid`` to the AE title ``destination`` (PS3.4 C.4.2)."""
        async with self._slots:
            return await asyncio.to_thread(move.move_study, self.settings, study_uid,
                                           destination=destination)

    async def move_instances(self, instances: Sequence[InstanceRecord], *,
                             destination: str) -> MoveOutcome:
        """C-MOVE of some ``instances`` of one study at IMAGE level, one per series (the
        counts and failures of all of them together)."""
        together = MoveOutcome()
        for series_uid, members in _by_series(instances).items():
            async with self._slots:
                one = await asyncio.to_thread(
                    move.move_instances, self.settings, members[0].study_uid, series_uid,
                    [m.sop_instance_uid for m in members], destination=destination)
            together.completed += one.completed
            together.failed += one.failed
            together.warning += one.warning
            together.failed_uids += one.failed_uids
            if one.status != SUCCESS:
                together.status = one.status
        return together


def _by_series(instances: Sequence[InstanceRecord]) -> dict[str, list[InstanceRecord]]:
    by_series: dict[str, list[InstanceRecord]] = {}
    for one in instances:
        by_series.setdefault(one.series_uid, []).append(one)
    return by_series


def sop_classes_of(instances: Sequence[InstanceRecord]) -> list[str]:
    """The storage SOP classes among ``instances`` (empty when the source returned none)."""
    return sorted({i.sop_class_uid for i in instances if i.sop_class_uid})
