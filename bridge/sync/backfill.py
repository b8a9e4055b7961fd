"""Backfill: walk an archive's whole history in StudyDate windows and mark every study due.

Windows are processed oldest first.  After a window's studies are durably marked due its
end date is saved as a checkpoint, so a crash or Ctrl-C resumes at the next window; the
marked studies themselves wait safely in the queue.  When the archive caps its QIDO
results (``max_results``) and a window reaches the cap, the window is split in two
rather than trusted to be complete.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from bridge.archive.client import DicomwebClient
from bridge.archive.dicomjson import STUDY_UID, first_str, study_fingerprint
from bridge.state import StateStore
from bridge.sync.poller import dicom_date_range

DEFAULT_START = date(1980, 1, 1)


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


def windows(start: date, end: date, days: int) -> list[Window]:
    out: list[Window] = []
    cur = start
    while cur <= end:
        stop = min(end, cur + timedelta(days=days - 1))
        out.append(Window(cur, stop))
        cur = stop + timedelta(days=1)
    return out


def checkpoint_name(archive: str, start: date, end: date) -> str:
    return f"backfill:{archive}:{start.isoformat()}:{end.isoformat()}"


async def _collect(archive: DicomwebClient, window: Window) -> dict[str, str] | None:
    """Fingerprints of the window's studies, or None if the archive's cap was reached."""
    cap = archive.settings.max_results
    found: dict[str, str] = {}
    offset, page = 0, archive.settings.page_size
    if cap is not None:
        page = min(page, cap)
    while True:
        batch = await archive.search_studies(
            {"StudyDate": dicom_date_range(window.start, window.end)}, limit=page, offset=offset
        )
        for study in batch:
            uid = first_str(study, STUDY_UID)
            if uid:
                found[uid] = study_fingerprint(study)
        if cap is not None and offset + len(batch) >= cap:
            return None
        if len(batch) < page:
            return found
        offset += len(batch)


@dataclass
class BackfillProgress:
    windows_done: int
    windows_total: int
    studies_marked: int


async def mark_history(
    archive: DicomwebClient,
    store: StateStore,
    *,
    start: date = DEFAULT_START,
    end: date,
    window_days: int,
    on_window: Callable[[BackfillProgress], None] | None = None,
) -> int:
    """Mark every study dated in [start, end] due (resuming from the checkpoint)."""
    name = checkpoint_name(archive.name, start, end)
    raw = await asyncio.to_thread(store.get_checkpoint, name)
    resume_after = date.fromisoformat(json.loads(raw)["done_through"]) if raw else None
    todo = [w for w in windows(start, end, window_days)
            if resume_after is None or w.start > resume_after]
    total = len(todo)
    marked = 0
    done = 0
    stack = list(reversed(todo))
    while stack:
        window = stack.pop()
        found = await _collect(archive, window)
        if found is None:
            if window.days > 1:
                first, second = window.halves()
                stack.extend([second, first])
                total += 1
                continue
            raise RuntimeError(
                f"archive {archive.name!r} caps results at {archive.settings.max_results} and "
                f"one day ({window.start}) holds more; raise max_results on the archive"
            )
        if found:
            known = await asyncio.to_thread(store.fingerprints, archive.name, sorted(found))
            changed = [(u, f) for u, f in sorted(found.items()) if known.get(u) != f]
            if changed:
                marked += await asyncio.to_thread(
                    store.mark_many_due, archive.name, changed, reason="backfill"
                )
        await asyncio.to_thread(
            store.set_checkpoint, name, json.dumps({"done_through": window.end.isoformat()})
        )
        done += 1
        if on_window:
            on_window(BackfillProgress(done, total, marked))
    return marked
