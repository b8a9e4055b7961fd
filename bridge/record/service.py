"""The record as a running part: the ``record.map`` worker of ``serve``.

The sync queues a ``record.map`` task for each study it writes (``record.enabled``; the
follow-ups of :mod:`bridge.state.tasks`); :class:`RecordService` runs a
:class:`~bridge.sync.tasks_worker.TaskWorker` with the :class:`RecordHandler` over the
sync's archive and FHIR clients until ``serve`` stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bridge.archive.client import DicomwebClient
from bridge.fhir.client import FhirClient
from bridge.record.handler import TASK_KIND, RecordHandler
from bridge.record.rules import DoseRules
from bridge.sections.record import RecordSettings
from bridge.state.store import StateStore
from bridge.sync.signal import WorkSignal
from bridge.sync.tasks_worker import TaskWorker, paced_worker

__all__ = ["RecordService", "record_worker"]


def record_worker(store: StateStore, handler: RecordHandler, settings: RecordSettings, *,
                  worker_id: str, signal: WorkSignal | None = None) -> TaskWorker:
    """The task worker of ``record.map`` at the pace of ``settings``."""
    return paced_worker(store, TASK_KIND, handler, settings.worker, worker_id=worker_id,
                        signal=signal)


class RecordService:
    """``serve``'s record worker (a RoomService): runs until ``stop`` is set, then closes
    the handler's own clients (the archive and FHIR clients are the sync's)."""

    name = "record"

    def __init__(self, store: StateStore, *, archives: Mapping[str, DicomwebClient],
                 fhir: FhirClient, rules: DoseRules, settings: RecordSettings,
                 worker_id: str, signal: WorkSignal | None = None) -> None:
        self._store = store
        self._archives = archives
        self._fhir = fhir
        self._rules = rules
        self._settings = settings
        self._worker_id = worker_id
        self._signal = signal

    async def run(self, stop: asyncio.Event) -> None:
        handler = RecordHandler(archives=self._archives, fhir=self._fhir, rules=self._rules)
        try:
            await record_worker(self._store, handler, self._settings,
                                worker_id=self._worker_id, signal=self._signal).run(stop)
        finally:
            await handler.aclose()
