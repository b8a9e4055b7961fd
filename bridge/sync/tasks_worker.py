"""Runs one kind of task from the state store's task queue (``bridge/state/tasks.py``).

A room gives the handler of its work (publish one study's manifest, map one study's
reports, migrate one legacy study); this loop claims, runs and settles, by the error tree
of :mod:`bridge.errors` as the sync does (``bridge.sync.settle``):

* the handler returns: the task is done, its return value kept as the task's result;
* :class:`~bridge.errors.Waiting` (outage, refused credentials, unknown patient): due
  again after a backoff, the attempt given back: waiting never dead-letters;
* :class:`~bridge.errors.Retryable`: due again after a backoff; after ``max_attempts``
  attempts a dead letter;
* :class:`~bridge.errors.Permanent`, or any other exception (a bug: logged with its
  traceback): a dead letter at once, the message kept.

A failure of one task never stops the others nor the loop; a state store that does not
answer (:class:`~bridge.state.errors.StateUnavailable`) pauses the loop for a while.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from bridge.errors import BridgeError, Permanent, Retryable, Waiting
from bridge.sections.base import TaskPace
from bridge.state.errors import StateUnavailable
from bridge.state.store import StateStore
from bridge.state.tasks import Task
from bridge.sync.backoff import retry_delay
from bridge.sync.signal import WorkSignal

__all__ = ["TaskHandler", "TaskWorker", "paced_worker"]

log = logging.getLogger(__name__)

#: runs one task; its return value is kept as the task's result
TaskHandler = Callable[[Task], Awaitable[Mapping[str, Any] | None]]


class TaskWorker:
    """Claims tasks of one ``kind`` and runs ``handler`` on each, ``concurrency`` at once."""

    def __init__(self, store: StateStore, kind: str, handler: TaskHandler, *,
                 worker_id: str, batch: int = 10, concurrency: int = 1,
                 lease_seconds: float = 300.0, max_attempts: int = 8,
                 backoff_base: float = 2.0, backoff_max: float = 900.0,
                 idle: float = 5.0, signal: WorkSignal | None = None) -> None:
        if batch < 1 or concurrency < 1 or max_attempts < 1:
            raise ValueError("batch, concurrency and max_attempts must be >= 1")
        self.store = store
        self.kind = kind
        self.handler = handler
        self.worker_id = worker_id
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.idle = idle
        #: set by whoever enqueues (the sync after recording follow-ups): look now
        self.signal = signal
        self._slots = asyncio.Semaphore(concurrency)

    async def run_once(self) -> int:
        """Claim one batch and run it; the number of tasks claimed."""
        tasks = await asyncio.to_thread(self.store.claim_tasks, self.kind, limit=self.batch,
                                        worker=self.worker_id,
                                        lease_seconds=self.lease_seconds)
        await asyncio.gather(*(self._run(task) for task in tasks))
        return len(tasks)

    async def drain(self) -> int:
        """Run until no task of the kind is ready; the number run."""
        total = 0
        while n := await self.run_once():
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, sleeping ``idle`` seconds (or until the signal) when
        nothing is ready."""
        while not stop.is_set():
            if self.signal is not None:
                self.signal.clear()  # before the claim: a mark made during it is kept
            try:
                claimed = await self.run_once()
            except StateUnavailable as exc:
                log.warning("task queue unavailable", extra={"kind": self.kind,
                                                             "error": str(exc)})
                claimed = 0
            if not claimed:
                await self._pause(stop)

    async def _pause(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait())]
        if self.signal is not None:
            waits.append(asyncio.ensure_future(self.signal.wait()))
        try:
            await asyncio.wait(waits, timeout=self.idle, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _run(self, task: Task) -> None:
        async with self._slots:
            try:
                result = await self.handler(task)
            except BridgeError as exc:
                await self._settle_error(task, exc)
                return
            except Exception as exc:  # a bug in the handler: this task only
                log.exception("task handler failed", extra={"kind": task.kind,
                                                             "key": task.key})
                await self._store(self.store.fail_task, task, worker=self.worker_id,
                                  error=f"internal error: {type(exc).__name__}: {exc}")
                return
            await self._store(self.store.complete_task, task, worker=self.worker_id,
                              result=result)

    async def _settle_error(self, task: Task, exc: BridgeError) -> None:
        message = f"{exc.kind}: {exc}"
        if isinstance(exc, Permanent) or (isinstance(exc, Retryable)
                                          and task.attempts >= self.max_attempts):
            log.warning("task failed", extra={"kind": task.kind, "key": task.key,
                                              "error_kind": exc.kind})
            await self._store(self.store.fail_task, task, worker=self.worker_id,
                              error=message)
            return
        waiting = isinstance(exc, Waiting)
        delay = retry_delay(task.attempts, base=self.backoff_base, cap=self.backoff_max,
                            retry_after=getattr(exc, "retry_after", None))
        at = self.store.now() + timedelta(seconds=delay)
        await self._store(self.store.retry_task, task, worker=self.worker_id, error=message,
                          at=at, counted=not waiting)

    async def _store(self, outcome: Callable[..., bool], task: Task, **kwargs: Any) -> None:
        recorded = await asyncio.to_thread(outcome, task, **kwargs)
        if not recorded:
            log.warning("task lease lost before its outcome was recorded",
                        extra={"kind": task.kind, "key": task.key})


def paced_worker(store: StateStore, kind: str, handler: TaskHandler, pace: TaskPace, *,
                 worker_id: str, signal: WorkSignal | None = None) -> TaskWorker:
    """The task worker of ``kind`` at a room's configured ``pace``."""
    return TaskWorker(store, kind, handler, worker_id=worker_id, batch=pace.batch,
                      concurrency=pace.workers, lease_seconds=pace.lease_seconds,
                      max_attempts=pace.max_attempts, backoff_base=pace.backoff_base,
                      backoff_max=pace.backoff_max, idle=pace.poll_interval, signal=signal)
