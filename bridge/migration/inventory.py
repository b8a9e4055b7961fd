"""Inventory of a legacy source: every study dated in a range, by StudyDate windows.

Windows are asked for oldest first.  When the source cuts a window's answer short (it
answered Cancel after its matches, or returned its declared ``max_results``) the window is
halved and its halves asked for instead, down to one day; a single day still capped is a
:class:`~bridge.migration.errors.LegacyResultCapped` (raise the cap at the source) rather
than a silently short inventory.  This is the QIDO backfill's splitting
(:mod:`bridge.sync.backfill`) with C-FIND in place of QIDO-RS.

Many legacy sources (dcmqrscp among them) return neither ModalitiesInStudy nor the
NumberOfStudyRelated* counts, which are optional return keys (PS3.4 C.6.2.1.2); with
``complete=True`` the walker asks for the study's series and instances to fill them in.

Studies without a StudyDate cannot be found by date windows; see docs/migration.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

from bridge.migration.client import LegacySource
from bridge.migration.errors import LegacyResultCapped
from bridge.migration.records import StudyRecord

__all__ = ["DateWindow", "walk_inventory", "with_counts"]


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Days from ``start`` to ``end``, both included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def halves(self) -> tuple[DateWindow, DateWindow]:
        """The first ``days // 2`` days, and the rest."""
        mid = self.start + timedelta(days=self.days // 2 - 1)
        return DateWindow(self.start, mid), DateWindow(mid + timedelta(days=1), self.end)


async def with_counts(source: LegacySource, study: StudyRecord) -> StudyRecord:
    """``study`` with its series and instance counts (and modalities, if the source left
    them out) as the source's series- and instance-level C-FINDs give them; a source's
    own study-level counts are kept when it returned them."""
    if study.instance_count is not None and study.series_count is not None \
            and study.modalities:
        return study
    series = await source.find_series(study.study_uid)
    instances = 0
    for one in series:
        if one.instance_count is not None:
            instances += one.instance_count
        else:
            instances += len(await source.find_instances(study.study_uid, one.series_uid))
    modalities = study.modalities or tuple(sorted({s.modality for s in series if s.modality}))
    return replace(
        study,
        series_count=study.series_count if study.series_count is not None else len(series),
        instance_count=study.instance_count if study.instance_count is not None else instances,
        modalities=modalities,
    )


async def walk_inventory(source: LegacySource, *, start: date, end: date,
                         window_days: int = 30, complete: bool = False
                         ) -> AsyncIterator[StudyRecord]:
    """Yield every study of ``source`` dated in [start, end], window by window, oldest
    window first (within a window in Study UID order).  Each window is at most
    ``window_days`` long before any split; with ``complete``, each study's counts and
    modalities are filled in (:func:`with_counts`) where the source left them out."""
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    cursor = start
    pending: list[DateWindow] = []  # split halves still to ask for, next one last
    while pending or cursor <= end:
        if pending:
            window = pending.pop()
        else:
            window = DateWindow(cursor, min(end, cursor + timedelta(days=window_days - 1)))
            cursor = window.end + timedelta(days=1)
        page = await source.find_studies(start=window.start, end=window.end)
        if page.capped:
            if window.days == 1:
                raise LegacyResultCapped(
                    f"legacy source {source.name!r} cut off its list of studies of "
                    f"{window.start} at {len(page.studies)}; raise its C-FIND result limit")
            first, second = window.halves()
            pending.extend((second, first))
            continue
        for study in sorted(page.studies, key=lambda s: s.study_uid):
            yield await with_counts(source, study) if complete else study
