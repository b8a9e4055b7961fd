"""Change detection by QIDO-RS polling of a recent StudyDate window.

Each poll asks only for studies dated within the last ``poll_window_days`` (PS3.18
10.6.1.2: date range matching), so its cost follows the day's volume, not the archive's
size.  A study is due when its fingerprint (counts, modalities, study-level attributes)
differs from the one the state store holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bridge.archive.client import DicomwebClient
from bridge.archive.dicomjson import STUDY_UID, first_str, study_fingerprint
from bridge.state import StateStore
from bridge.sync.signal import WorkSignal

log = logging.getLogger(__name__)


def dicom_date_range(start: date, end: date) -> str:
    """QIDO range matching value ``YYYYMMDD-YYYYMMDD`` (PS3.4 C.2.2.2.5)."""
    return f"{start:%Y%m%d}-{end:%Y%m%d}"


@dataclass(frozen=True, slots=True)
class PollResult:
    archive: str
    seen: int
    due: int
    requests: int


async def poll_window(
    archive: DicomwebClient,
    store: StateStore,
    *,
    start: date,
    end: date,
    reason: str = "poll",
) -> PollResult:
    """Mark due every study in [start, end] whose fingerprint changed; return counts."""
    fingerprints: dict[str, str] = {}
    requests = 0
    async for page in archive.study_pages({"StudyDate": dicom_date_range(start, end)}):
        requests += 1
        for study in page.rows:
            uid = first_str(study, STUDY_UID)
            if uid:
                fingerprints[uid] = study_fingerprint(study)
    if not fingerprints:
        return PollResult(archive.name, 0, 0, requests)
    uids = sorted(fingerprints)
    known = await asyncio.to_thread(store.fingerprints, archive.name, uids)
    changed = [(u, fingerprints[u]) for u in uids if known.get(u) != fingerprints[u]]
    if changed:
        await asyncio.to_thread(store.mark_many_due, archive.name, changed, reason=reason)
    return PollResult(archive.name, len(uids), len(changed), requests)


class Poller:
    """Runs :func:`poll_window` for every archive every ``interval`` seconds."""

    def __init__(
        self,
        archives: list[DicomwebClient],
        store: StateStore,
        *,
        interval: float,
        window_days: int,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        work: WorkSignal | None = None,
    ) -> None:
        self.archives = archives
        self.store = store
        self.interval = interval
        self.window_days = window_days
        self._today = today
        self.last_poll: datetime | None = None
        self.last_results: list[PollResult] = []
        #: set whenever a poll marked something due, so workers wake at once
        self.work = work if work is not None else WorkSignal()

    async def poll_once(self) -> list[PollResult]:
        today = self._today()
        # a day of margin on the far side: the archive's clock or time zone may be ahead
        start, end = today - timedelta(days=self.window_days), today + timedelta(days=1)
        results: list[PollResult] = []
        for archive in self.archives:
            try:
                results.append(await poll_window(archive, self.store, start=start, end=end))
            except Exception as exc:  # one archive down must not stop polling the others
                log.warning("poll failed", extra={"archive": archive.name,
                                                  "error_type": type(exc).__name__})
        self.last_poll = datetime.now(UTC)
        self.last_results = results
        if any(r.due for r in results):
            self.work.set()
        return results

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.poll_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
