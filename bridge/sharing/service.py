"""The Imaging Document Source as a running part: the publisher opened over its clients,
and the worker of ``serve`` that runs the ``share.publish`` tasks (bridge.state's task
queue, filled by the sync's follow-ups and ``imaging-bridge sharing publish``).

:func:`open_publisher` opens what the publisher writes through (a STOW-RS client per
archive, the registry's FhirClient of ``sharing.registry``) and closes them on exit; the
archives' readers are the sync's.  :class:`PublicationService` is the room's
``RoomService`` (bridge.assembly): it opens the publisher and runs a
:class:`~bridge.sync.tasks_worker.TaskWorker` on it until ``serve`` stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager

from bridge.config import ArchiveSettings, FhirSettings
from bridge.fhir.client import FhirClient
from bridge.sections.sharing import SharingSettings
from bridge.sharing.policy import SharingPolicy
from bridge.sharing.publish import ManifestStore
from bridge.sharing.publisher import TASK_KIND, Publisher, StudyReader
from bridge.sharing.source_registry import SourceRegistry
from bridge.state.store import StateStore
from bridge.sync.signal import WorkSignal
from bridge.sync.tasks_worker import TaskWorker, paced_worker


@contextlib.asynccontextmanager
async def open_publisher(
    *,
    readers: Mapping[str, StudyReader],
    archives: Sequence[ArchiveSettings],
    registry: FhirSettings,
    policy: SharingPolicy,
    retrieve_bases: Mapping[str, str],
    register_patients: bool = False,
) -> AsyncIterator[Publisher]:
    """A publisher over ``readers`` (the sync's archive clients), with a STOW-RS client
    of each of ``archives`` and a FhirClient of ``registry``, closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        stores = {a.name: await stack.enter_async_context(ManifestStore(a))
                  for a in archives}
        fhir = await stack.enter_async_context(FhirClient(registry))
        yield Publisher(archives=readers, stores=stores, registry=SourceRegistry(fhir),
                        policy=policy, retrieve_bases=retrieve_bases,
                        register_patients=register_patients)


def publication_worker(store: StateStore, publisher: Publisher, settings: SharingSettings,
                       *, worker_id: str, signal: WorkSignal | None = None) -> TaskWorker:
    """The task worker of ``share.publish`` at the pace of ``settings``."""
    return paced_worker(store, TASK_KIND, publisher.handle, settings.worker,
                        worker_id=worker_id, signal=signal)


class PublicationService:
    """``serve``'s publication worker (a RoomService): runs until ``stop`` is set."""

    name = "sharing-publisher"

    def __init__(self, *, publisher: AbstractAsyncContextManager[Publisher],
                 worker: Callable[[Publisher], TaskWorker]) -> None:
        #: entered once, by :meth:`run`
        self._publisher = publisher
        self._worker = worker

    async def run(self, stop: asyncio.Event) -> None:
        async with self._publisher as publisher:
            await self._worker(publisher).run(stop)
