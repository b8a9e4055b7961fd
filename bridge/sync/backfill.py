"""Backfill: walk an archive's whole history in StudyDate windows and mark every study due.

Windows are processed oldest first, one after the other.  After a window's studies are
durably marked due its end date is saved as a checkpoint, so a crash or Ctrl-C resumes the
day after; the marked studies themselves wait safely in the queue.  When the archive caps
its QIDO results (``max_results``) and a window reaches the cap, the window is halved
rather than trusted to be complete.

Window sizes adapt to the archive (``adaptive``): each window's yield sets the next one's
length, aiming at half a QIDO page, so decades with no studies cost a handful of requests
instead of twelve a year, and dense months are asked for in pieces that fit one page.

The windows only find studies dated within [start, end]; :func:`backfill` then runs the
undated pass (:mod:`bridge.sync.undated`) for every study they cannot find (StudyDate
empty, missing, invalid, or outside the range), so a backfill covers the whole archive.
An archive outage during the scan is waited out (:class:`~bridge.sync.patience.Patience`)
as the drain waits one out, instead of ending the command.

:func:`backfill` overlaps the scan with the sync: workers claim what the scan has already
marked while it goes on, so a backfill takes about the longer of the two, not their sum.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import partial

from bridge.archive.client import DicomwebClient
from bridge.archive.dicomjson import STUDY_UID, first_str, study_fingerprint
from bridge.state import StateStore
from bridge.sync.patience import Patience
from bridge.sync.poller import dicom_date_range
from bridge.sync.runner import DrainStats, SyncRunner
from bridge.sync.undated import UndatedResult, mark_undated

DEFAULT_START = date(1980, 1, 1)
#: a window grows at most this much from one to the next: a sparse stretch says little
#: about the density just past it, and an overshoot into a dense era costs a capped request
MAX_GROWTH = 4


@dataclass(frozen=True, slots=True)
class Window:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def halves(self) -> tuple[Window, Window]:
        mid = self.start + timedelta(days=self.days // 2 - 1)
        return Window(self.start, mid), Window(mid + timedelta(days=1), self.end)


def window_target(archive: DicomwebClient) -> int:
    """Studies a window should hold: half of what one request returns (a page, or the cap),
    so density varying within a window rarely costs a second page or a split."""
    page = archive.settings.page_size
    cap = archive.settings.max_results
    if cap is not None:
        page = min(page, cap)
    return max(1, page // 2)


def next_window_days(days: int, found: int, *, target: int) -> int:
    """Length of the next window, from the last one's length and yield (same density)."""
    if found == 0:
        return days * MAX_GROWTH
    return max(1, min(days * MAX_GROWTH, days * target // found))


def checkpoint_name(archive: str, start: date, end: date) -> str:
    return f"backfill:{archive}:{start.isoformat()}:{end.isoformat()}"


async def _collect(archive: DicomwebClient, window: Window, patience: Patience
                   ) -> dict[str, str] | None:
    """Fingerprints of the window's studies, or None if the archive's cap was reached."""
    found: dict[str, str] = {}
    pages = archive.study_pages({"StudyDate": dicom_date_range(window.start, window.end)},
                                guard=partial(patience.call, archive=archive.name))
    async for page in pages:
        for study in page.rows:
            uid = first_str(study, STUDY_UID)
            if uid:
                found[uid] = study_fingerprint(study)
        if page.capped:
            return None
    return found


@dataclass
class BackfillProgress:
    windows_done: int
    days_done: int
    days_total: int
    studies_marked: int


async def mark_history(
    archive: DicomwebClient,
    store: StateStore,
    *,
    start: date = DEFAULT_START,
    end: date,
    window_days: int,
    adaptive: bool = True,
    concurrency: int = 1,
    on_window: Callable[[BackfillProgress], None] | None = None,
    patience: Patience | None = None,
) -> int:
    """Mark every study dated in [start, end] due (resuming from the checkpoint).

    ``window_days`` is the first window's length (every window's, unless ``adaptive``).
    Up to ``concurrency`` window QIDOs run at once (an archive answers them on several
    cores), but windows are marked and checkpointed strictly in date order: the checkpoint
    never passes a window whose studies are not yet durably due.  A window query meeting
    an archive outage is retried within ``patience`` (default :class:`Patience`)."""
    name = checkpoint_name(archive.name, start, end)
    raw = await asyncio.to_thread(store.get_checkpoint, name)
    cur = start
    if raw:
        cur = max(start, date.fromisoformat(json.loads(raw)["done_through"]) + timedelta(days=1))
    target = window_target(archive)
    wait = patience or Patience()
    days_total = (end - start).days + 1
    marked = done = 0
    days = window_days
    inflight: deque[tuple[Window, asyncio.Task[dict[str, str] | None]]] = deque()

    def launch(window: Window) -> tuple[Window, asyncio.Task[dict[str, str] | None]]:
        return window, asyncio.create_task(_collect(archive, window, wait))

    try:
        while inflight or cur <= end:
            # sizes of windows already in flight were guessed from older yields: that is
            # the price of asking ahead, and a guess too large only costs a split or a page
            while len(inflight) < concurrency and cur <= end:
                inflight.append(launch(Window(cur, min(end, cur + timedelta(days=days - 1)))))
                cur = inflight[-1][0].end + timedelta(days=1)
            window, task = inflight.popleft()
            found = await task
            if found is None:
                if window.days == 1:
                    raise RuntimeError(
                        f"archive {archive.name!r} caps results at "
                        f"{archive.settings.max_results} and one day ({window.start}) holds "
                        f"more; raise max_results on the archive")
                first, second = window.halves()
                inflight.appendleft(launch(second))
                inflight.appendleft(launch(first))
                days = first.days
                continue
            if found:
                known = await asyncio.to_thread(store.fingerprints, archive.name, sorted(found))
                changed = [(u, f) for u, f in sorted(found.items()) if known.get(u) != f]
                if changed:
                    marked += await asyncio.to_thread(
                        store.mark_many_due, archive.name, changed, reason="backfill"
                    )
            # only now, with this window and every earlier one durably due, may a resume
            # skip it
            await asyncio.to_thread(
                store.set_checkpoint, name, json.dumps({"done_through": window.end.isoformat()})
            )
            done += 1
            days = (next_window_days(window.days, len(found), target=target) if adaptive
                    else window_days)
            if on_window:
                on_window(BackfillProgress(done, (window.end - start).days + 1, days_total,
                                           marked))
    finally:
        for _, task in inflight:
            task.cancel()
        await asyncio.gather(*(t for _, t in inflight), return_exceptions=True)
    return marked


# --- scan and sync at once ----------------------------------------------------------------


@dataclass
class BackfillResult:
    marked: int = 0
    stats: DrainStats = field(default_factory=DrainStats)
    #: the undated pass of each archive (empty when it was not asked for)
    undated: list[UndatedResult] = field(default_factory=list)


@dataclass
class _Scan:
    """What the running scan has marked, against what the workers have claimed since."""

    marked: int = 0
    claimed: int = 0
    woke: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def pending(self) -> int:
        return self.marked - self.claimed


def _add(total: DrainStats, part: DrainStats, *, less: DrainStats) -> None:
    """``total += part - less``, field by field."""
    for name in ("synced", "unchanged", "retried", "failed", "batches"):
        delta = getattr(part, name) - getattr(less, name)
        setattr(total, name, getattr(total, name) + delta)


async def backfill(
    runner: SyncRunner,
    archives: Sequence[DicomwebClient],
    *,
    store: StateStore | None = None,
    start: date = DEFAULT_START,
    end: date,
    window_days: int,
    adaptive: bool = True,
    scan_concurrency: int = 1,
    max_idle: float,
    workers: int = 1,
    poll: float = 0.5,
    on_window: Callable[[str, BackfillProgress], None] | None = None,
    on_batch: Callable[[DrainStats], None] | None = None,
    undated: bool = True,
    patience: Patience | None = None,
    on_undated: Callable[[UndatedResult], None] | None = None,
) -> BackfillResult:
    """Scan ``archives`` one after the other (:func:`mark_history`) while ``workers`` loops
    sync what is already marked; then drain until settled.  ``store`` is where the scan
    marks (default: the runner's).  With ``undated``, each archive's windows are followed
    by the undated pass (studies outside [start, end] or with no usable StudyDate).  Scan
    queries wait out an archive outage within ``patience``; a scan error beyond it stops
    the workers after their current batch and is raised; what was marked stays queued and
    checkpointed for the next run.
    """
    result = BackfillResult()
    scan = _Scan()
    batch = runner.sync.claim_batch

    async def run_scan() -> None:
        for archive in archives:
            before = scan.marked

            def progress(p: BackfillProgress, name: str = archive.name,
                         before: int = before) -> None:
                scan.marked = before + p.studies_marked
                scan.woke.set()
                if on_window:
                    on_window(name, p)

            await mark_history(archive, store or runner.store, start=start, end=end,
                               window_days=window_days, adaptive=adaptive,
                               concurrency=scan_concurrency, on_window=progress,
                               patience=patience)
            if not undated:
                continue
            windows_marked = scan.marked

            def undated_progress(u: UndatedResult, windows_marked: int = windows_marked
                                 ) -> None:
                scan.marked = windows_marked + u.marked
                scan.woke.set()
                if on_undated:
                    on_undated(u)

            result.undated.append(await mark_undated(
                archive, store or runner.store, start=start, end=end, patience=patience,
                on_page=undated_progress))
            if on_undated:
                on_undated(result.undated[-1])
        result.marked = scan.marked

    def batch_done() -> None:
        if on_batch:
            on_batch(result.stats)

    async def work(scanning: asyncio.Task[None]) -> None:
        while not scanning.done():
            scan.woke.clear()
            # while the scan runs, claim only full batches: a worker that took every few
            # studies as they were marked would write many small FHIR batches
            if scan.pending >= batch:
                claimed = await runner.run_once(result.stats)
                scan.claimed += claimed
                if claimed:
                    batch_done()
                    continue
                scan.claimed = scan.marked  # taken by someone else: wait for more
            waiter = asyncio.create_task(scan.woke.wait())
            try:
                await asyncio.wait({scanning, waiter}, timeout=poll,
                                   return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
        if scanning.exception() is not None:
            return
        # the scan is over: drain_until_settled may now stop once nothing is due or leased
        seen = DrainStats()

        def settled_batch(stats: DrainStats) -> None:
            nonlocal seen
            _add(result.stats, stats, less=seen)
            seen = replace(stats)
            batch_done()

        # the batches after the last callback (none today, but cheap to be sure of)
        settled_batch(await runner.drain_until_settled(max_idle=max_idle, poll=poll,
                                                       on_batch=settled_batch))

    scanning = asyncio.create_task(run_scan(), name="backfill-scan")
    try:
        await asyncio.gather(*(work(scanning) for _ in range(workers)))
        await scanning  # raises the scan's error, if it had one
    finally:
        if not scanning.done():
            scanning.cancel()
            await asyncio.gather(scanning, return_exceptions=True)
    return result
