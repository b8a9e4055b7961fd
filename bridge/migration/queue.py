"""A source's studies in the task queue (``bridge.state.tasks``): one task per study, of
kind ``migrate.<source>``, keyed by its Study Instance UID, with what the inventory knew
(date, modalities, counts: never patient names or IDs) as payload.

The inventory enqueues only studies the queue does not hold yet: re-enqueueing makes a
task due again, and a study already migrated (or failed, waiting for a look) must not be
moved again because the inventory was walked twice.  ``migrate retry`` is for those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from bridge.migration.client import LegacySource
from bridge.migration.inventory import walk_inventory
from bridge.migration.records import StudyRecord
from bridge.migration.study import migration_kind
from bridge.state.tasks import Task, TaskStatus

__all__ = ["STATE_NAMES", "InventoryCounts", "TaskQueue", "enqueue_inventory", "queued_keys",
           "study_payload", "task_pages"]

#: the task statuses as the migration reports name them
STATE_NAMES = {TaskStatus.DUE: "queued", TaskStatus.LEASED: "in progress",
               TaskStatus.DONE: "migrated", TaskStatus.FAILED: "failed"}
#: tasks read per page when the whole queue of a source is listed
PAGE = 500


class TaskQueue(Protocol):
    """The task queue operations the migration uses (:class:`~bridge.state.StateStore`)."""

    def enqueue_task(self, kind: str, key: str, *, payload: dict[str, Any] | None = None
                     ) -> None: ...

    def tasks(self, kind: str, *, status: str | None = None, limit: int = 100,
              after_key: str | None = None) -> list[Task]: ...

    def task_counts(self, kind: str) -> dict[str, int]: ...


@dataclass(slots=True)
class InventoryCounts:
    """What one inventory walk found: ``queued`` new tasks, ``known`` studies the queue
    already held (left as they are)."""

    found: int = 0
    queued: int = 0
    known: int = 0
    instances: int = 0


def study_payload(study: StudyRecord) -> dict[str, Any]:
    """A task's payload: the inventory's counts and dates of ``study``."""
    return {
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "modalities": list(study.modalities),
        "series": study.series_count,
        "instances": study.instance_count,
    }


def task_pages(queue: TaskQueue, kind: str) -> Iterator[Task]:
    """Every task of ``kind``, by key, read a page at a time."""
    after: str | None = None
    while True:
        page = queue.tasks(kind, limit=PAGE, after_key=after)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].key


def queued_keys(queue: TaskQueue, kind: str) -> set[str]:
    """The keys of every task of ``kind``, whatever its status."""
    return {task.key for task in task_pages(queue, kind)}


async def enqueue_inventory(queue: TaskQueue, source: LegacySource, *, start: date,
                            end: date, window_days: int = 30) -> InventoryCounts:
    """Walk ``source``'s studies dated in [start, end] and queue a task for each study the
    queue does not hold yet."""
    kind = migration_kind(source.name)
    known = await asyncio.to_thread(queued_keys, queue, kind)
    counts = InventoryCounts()
    async for study in walk_inventory(source, start=start, end=end, window_days=window_days,
                                      complete=True):
        counts.found += 1
        counts.instances += study.instance_count or 0
        if study.study_uid in known:
            counts.known += 1
            continue
        await asyncio.to_thread(queue.enqueue_task, kind, study.study_uid,
                                payload=study_payload(study))
        known.add(study.study_uid)
        counts.queued += 1
    return counts
