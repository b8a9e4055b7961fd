"""Draining a source's migration tasks with the generic task worker
(:class:`~bridge.sync.tasks_worker.TaskWorker`, one claim loop per worker, a study at a
time each): it claims, runs the per-study step
(:class:`~bridge.migration.study.StudyMigrator`) and settles each task by the branch of
the error tree (result: ``done``, "migrated"; Waiting: due again, attempt given back;
Retryable: due again, dead letter after ``max_attempts``; Permanent: dead letter).

This loop adds the source's time windows: before each claim it looks at them, and outside
them it sleeps until the next one opens and claims nothing, so no study is leased (nor
failed) while the source is closed.  A worker that dies mid-study leaves its task leased;
once the lease expires any worker (of this or another process) claims it again and the
step starts the study over.  :meth:`MigrationRun.drain` ends when the source has no task
due or leased left; :meth:`MigrationRun.run` (``serve``) runs until stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bridge.migration.study import StudyMigrator, migration_kind
from bridge.state.store import StateStore
from bridge.state.tasks import Task, TaskStatus
from bridge.sync.tasks_worker import TaskWorker

__all__ = ["MigrationRun", "RunCounts", "Sleep", "default_worker_id"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class RunCounts:
    """What one run moved, and how long it waited for the source's windows."""

    migrated: int = 0
    instances: int = 0
    bytes: int = 0
    #: seconds the run slept because the source was outside its time windows
    closed_seconds: float = 0.0


def default_worker_id() -> str:
    """``host:pid``: who holds a lease, as the queue records it."""
    return f"{socket.gethostname()}:{os.getpid()}"


class MigrationRun:
    """One source's tasks, ``workers`` studies at once (see the module doc)."""

    name: str

    def __init__(self, store: StateStore, migrator: StudyMigrator, *, workers: int = 1,
                 lease_seconds: float = 900.0, max_attempts: int = 5,
                 poll_interval: float = 2.0, worker_id: str | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.store = store
        self.migrator = migrator
        self.kind = migration_kind(migrator.source.name)
        self.name = self.kind
        self.poll_interval = poll_interval
        self._sleep = sleep
        self.counts = RunCounts()
        base = worker_id or default_worker_id()
        # one claim loop per worker, each a study at a time: a large study holds up only
        # its own loop (one TaskWorker with batch = concurrency = workers would wait for
        # its whole batch before claiming again)
        self.workers = [
            TaskWorker(store, self.kind, self._step,
                       worker_id=base if workers == 1 else f"{base}/{n}", batch=1,
                       concurrency=1, lease_seconds=lease_seconds,
                       max_attempts=max_attempts, idle=poll_interval)
            for n in range(workers)]
        self.worker = self.workers[0]

    async def _step(self, task: Task) -> Mapping[str, Any] | None:
        result = await self.migrator(task)
        self.counts.migrated += 1
        self.counts.instances += int(result.get("instances", 0))
        self.counts.bytes += int(result.get("bytes", 0))
        return result

    async def drain(self, stop: asyncio.Event | None = None) -> RunCounts:
        """Run until no task of the source is due or leased (or ``stop`` is set)."""
        stop = stop or asyncio.Event()
        await asyncio.gather(*(self._loop(w, stop, until_idle=True) for w in self.workers))
        return self.counts

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (a room service of ``serve``)."""
        await asyncio.gather(*(self._loop(w, stop, until_idle=False) for w in self.workers))

    async def _loop(self, worker: TaskWorker, stop: asyncio.Event, *,
                    until_idle: bool) -> None:
        while not stop.is_set():
            closed = self.migrator.seconds_until_open()
            if closed > 0:
                if until_idle and not await self._open_work():
                    return
                log.info("legacy source closed, waiting for its window", extra={
                    "source": self.migrator.source.name, "seconds": round(closed)})
                self.counts.closed_seconds += closed
                await self._wait(stop, closed)
                continue
            if await worker.run_once():
                continue
            if until_idle and not await self._open_work():
                return
            await self._wait(stop, self.poll_interval)

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep ``seconds``, or less when ``stop`` is set meanwhile."""
        sleeping = asyncio.ensure_future(self._sleep(seconds))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            stopping.cancel()

    async def _open_work(self) -> bool:
        """Whether a task is due (now or later) or leased (its lease may expire)."""
        counts = await asyncio.to_thread(self.store.task_counts, self.kind)
        return bool(counts.get(TaskStatus.DUE, 0) or counts.get(TaskStatus.LEASED, 0))
