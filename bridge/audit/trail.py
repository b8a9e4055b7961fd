"""The audit trail: records access decisions without slowing the request that made them.

:meth:`AuditTrail.record` is synchronous and never waits: it aggregates, writes the log
line, counts, and puts the record on a bounded in-memory queue.  A background task (started
on the first record, in the running event loop) drains the queue: whatever is waiting, up
to ``batch_size``, goes to the sink in one FHIR batch Bundle, so batches grow only while
the audit server is slower than the requests.  When the queue is full the record is
dropped (``bridge_audit_records_total{result="dropped"}`` and a warning, at most one a
minute); a sink failure is counted as ``failed`` and logged by the sink.  The log line is
written for every record before it is queued, so the log is the complete trail even when
the audit server is down.

Aggregation (one record per decision, not per frame): a decision whose
:meth:`AuditRecord.key` (source, action, outcome, reason, who and from where, patient, studies,
archive, query) equals one recorded less than ``aggregate_seconds`` ago is only counted
(``coalesced``).  A WADO-RS read is keyed by its study, not its series, instance or frame,
so a viewer reading a study for ten minutes leaves one record per window (default 60 s);
each distinct search is its own record.

Log lines (logger ``bridge.audit``, message ``access decision``) carry the record id,
source, action, outcome, reason, status, client id, token kind, whether a user was
identified, study UIDs and archive: never the patient, the user's identity, a token or a
query string (which may hold a patient's name).  The patient and the user are in the
AuditEvent only, on the audit server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from bridge.audit.record import AuditRecord
from bridge.audit.sink import AuditSink
from bridge.metrics import ACCESS_DECISIONS, AUDIT_QUEUE, AUDIT_RECORDS

log = logging.getLogger("bridge.audit")

_RECENT_MAX = 20000  # remembered decision keys (aggregation); the oldest are forgotten
_DROP_WARN_EVERY = 60.0


class AuditTrail:
    """Logs, aggregates and queues access decisions; one per app, ``aclose()`` at the end."""

    def __init__(self, *, sink: AuditSink | None, queue_size: int = 10000,
                 batch_size: int = 50, aggregate_seconds: float = 60.0,
                 close_timeout: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sink = sink
        self._queue: asyncio.Queue[AuditRecord] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._window = aggregate_seconds
        self._close_timeout = close_timeout
        self._clock = clock
        self._recent: OrderedDict[tuple[object, ...], float] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._last_drop_warning = -_DROP_WARN_EVERY
        self._closed = False
        #: the event loop the writer runs in (tests in another thread flush through it)
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- recording (the request's side: no waiting) -------------------------------------------

    def record(self, record: AuditRecord) -> bool:
        """Record a decision; False when it was aggregated into an earlier record."""
        ACCESS_DECISIONS.labels(source=record.source, action=record.action.value,
                                outcome=record.outcome.value).inc()
        if self._seen(record):
            AUDIT_RECORDS.labels(result="coalesced").inc()
            return False
        AUDIT_RECORDS.labels(result="recorded").inc()
        actor = record.actor
        log.info("access decision", extra={
            "audit_id": record.id, "source": record.source, "action": record.action.value,
            "outcome": record.outcome.value, "reason": record.reason,
            "status": record.status, "client_id": actor.client_id, "token_kind": actor.kind,
            "user_identified": actor.user is not None, "session_ref": actor.session,
            "study_uid": ",".join(record.studies) or None, "archive": record.archive})
        if self.sink is not None:
            self._enqueue(record)
        return True

    def _seen(self, record: AuditRecord) -> bool:
        if self._window <= 0:
            return False
        now = self._clock()
        while self._recent and (now - next(iter(self._recent.values())) >= self._window
                                or len(self._recent) > _RECENT_MAX):
            self._recent.popitem(last=False)
        key = record.key()
        if key in self._recent:
            return True
        self._recent[key] = now
        return False

    def _enqueue(self, record: AuditRecord) -> None:
        if self._closed:
            self._dropped("closed")
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self._dropped("queue-full")
            return
        AUDIT_QUEUE.set(self._queue.qsize())
        self._start()

    def _dropped(self, why: str) -> None:
        AUDIT_RECORDS.labels(result="dropped").inc()
        now = self._clock()
        if now - self._last_drop_warning >= _DROP_WARN_EVERY:
            self._last_drop_warning = now
            log.warning("audit records dropped: the AuditEvent queue is full or closed "
                        "(the audit log lines remain)",
                        extra={"reason": why, "queue_size": self._queue.maxsize})

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the records wait for the first record made inside one
        if loop is self.loop and self._task is not None and not self._task.done():
            return
        if self.loop is not None and loop is not self.loop:
            # another event loop (an app served again, a test client's): an asyncio queue
            # belongs to the loop it first waited in, so the waiting records move over
            old, self._queue = self._queue, asyncio.Queue(maxsize=self._queue.maxsize)
            while not old.empty():
                self._queue.put_nowait(old.get_nowait())
        self.loop = loop
        self._task = loop.create_task(self._run(), name="audit-writer")

    # --- writing (the background task) --------------------------------------------------------

    async def _run(self) -> None:
        assert self.sink is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                written = await self.sink.write(batch)
            except Exception:  # a sink bug must not end the trail: count and go on
                log.exception("audit sink raised", extra={"records": len(batch)})
                written = 0
            finally:
                for _ in batch:
                    self._queue.task_done()
                AUDIT_QUEUE.set(self._queue.qsize())
            AUDIT_RECORDS.labels(result="written").inc(written)
            if written < len(batch):
                AUDIT_RECORDS.labels(result="failed").inc(len(batch) - written)

    async def flush(self) -> None:
        """Wait until every queued record has been handed to the sink."""
        if not self._queue.empty():
            self._start()
        await self._queue.join()

    async def aclose(self) -> None:
        """Write what is queued (at most ``close_timeout`` seconds), then stop."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), self._close_timeout)
        left = self._queue.qsize()
        if left:
            AUDIT_RECORDS.labels(result="dropped").inc(left)
            log.warning("audit records not written at shut-down", extra={"records": left})
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.sink is not None:
            await self.sink.aclose()
