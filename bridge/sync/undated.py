"""Studies no StudyDate window finds: dated empty, missing, invalid, or outside the range.

Backfill and polling ask QIDO-RS for StudyDate ranges (PS3.4 C.2.2.2.5 range matching).
A study whose StudyDate (0008,0020) is empty or absent matches no range, one whose value
is not a DA (PS3.5 6.2, e.g. ``abcdefgh``) matches whatever the archive's string
comparison makes of it (Orthanc puts it after every date), and one dated 1975 or 2099
lies outside the range walked.  None of them is ever seen by a window, silently.

The *undated pass* closes that gap: it pages through the archive with no date filter at all
(``limit``/``offset``, PS3.18 8.3.4.4) and keeps the studies whose StudyDate is not a date
inside [start, end], i.e. exactly those the windows cannot have found.  Pages are handled
one at a time, so memory does not grow with the archive.  A study the windows found as
well (an archive matching a partial date such as ``2020`` by string) may be marked twice:
marking due coalesces, so that costs nothing.

An archive that caps QIDO results (``max_results``) cannot be listed past its cap; the
pass then says so (a warning and :attr:`UndatedResult.complete` False) rather than
pretending it saw everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date
from functools import partial

from bridge.archive.client import DicomwebClient
from bridge.archive.dicomjson import STUDY_UID, DicomJson, first_str, study_fingerprint
from bridge.state import StateStore
from bridge.sync.patience import Patience

log = logging.getLogger(__name__)

STUDY_DATE = "00080020"


def study_date(study: DicomJson) -> date | None:
    """The study's StudyDate as a date, or None when empty, absent or not a valid DA
    (``YYYYMMDD``, PS3.5 6.2; the ACR-NEMA ``YYYY.MM.DD`` form is accepted too)."""
    text = (first_str(study, STUDY_DATE) or "").strip().replace(".", "")
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def outside(study: DicomJson, start: date, end: date) -> bool:
    """Whether no StudyDate window within [start, end] can have found ``study``."""
    when = study_date(study)
    return when is None or not start <= when <= end


@dataclass
class UndatedResult:
    archive: str
    seen: int = 0  # studies outside [start, end] listed by the archive
    marked: int = 0  # of those, new or changed (fingerprint) and marked due
    complete: bool = True  # False: the archive's result cap stopped the listing


async def changed_outside(
    archive: DicomwebClient,
    store: StateStore,
    *,
    start: date,
    end: date,
    patience: Patience,
    result: UndatedResult,
) -> AsyncIterator[list[tuple[str, str, DicomJson]]]:
    """Page by page, the ``(uid, fingerprint, study)`` of studies outside [start, end]
    whose fingerprint differs from the store's (never seen, changed, or stored without
    one).  Counts go to ``result``."""
    async for page in archive.study_pages(None, guard=partial(patience.call,
                                                               archive=archive.name)):
        found: dict[str, tuple[str, DicomJson]] = {}
        for study in page.rows:
            uid = first_str(study, STUDY_UID)
            if uid and outside(study, start, end):
                found[uid] = (study_fingerprint(study), study)
        result.seen += len(found)
        if found:
            known = await asyncio.to_thread(store.fingerprints, archive.name, sorted(found))
            changed = [(u, fp, s) for u, (fp, s) in sorted(found.items()) if known.get(u) != fp]
            if changed:
                yield changed
        if page.capped:
            result.complete = False
            log.warning("undated pass stopped at the archive's QIDO result cap; studies "
                        "past it with no usable StudyDate were not seen",
                        extra={"archive": archive.name,
                               "max_results": archive.settings.max_results})
            return


async def mark_undated(
    archive: DicomwebClient,
    store: StateStore,
    *,
    start: date,
    end: date,
    patience: Patience | None = None,
    reason: str = "backfill",
    on_page: Callable[[UndatedResult], None] | None = None,
) -> UndatedResult:
    """Mark due every study outside [start, end] that is new or changed (see module)."""
    result = UndatedResult(archive.name)
    async for changed in changed_outside(archive, store, start=start, end=end,
                                         patience=patience or Patience(), result=result):
        result.marked += await asyncio.to_thread(
            store.mark_many_due, archive.name, [(u, fp) for u, fp, _ in changed],
            reason=reason)
        if on_page:
            on_page(result)
    if result.seen:
        log.info("undated pass done", extra={"archive": archive.name, "seen": result.seen,
                                             "marked": result.marked})
    return result
