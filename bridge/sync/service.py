"""Wire the sync engine together from settings, and run it as a long-lived service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from bridge.archive.client import DicomwebClient
from bridge.auth.health import AUTH_HEALTH
from bridge.config import Settings
from bridge.errors import AuthError, BridgeError, ConfigError, FhirRejected
from bridge.fhir.client import FhirClient
from bridge.gateway.endpoint import gateway_endpoint_hooks
from bridge.mapping import MappingEngine, load_mapping
from bridge.metrics import QUEUE_DEPTH
from bridge.state import StateStore, open_store
from bridge.sync.deletes import GoneHandler
from bridge.sync.poller import Poller
from bridge.sync.runner import DrainStats, SyncRunner

log = logging.getLogger(__name__)


@dataclass
class SyncContext:
    settings: Settings
    store: StateStore
    archives: dict[str, DicomwebClient]
    fhir: FhirClient
    engine: MappingEngine
    runner: SyncRunner
    poller: Poller
    stats: DrainStats = field(default_factory=DrainStats)


@contextlib.asynccontextmanager
async def sync_context(settings: Settings, *, worker_id: str | None = None
                       ) -> AsyncIterator[SyncContext]:
    """Open the store, the clients and the mapping; close them all on exit."""
    if not settings.archives:
        raise ConfigError("no archive configured: set BRIDGE_ARCHIVE__BASE_URL or archives:")
    engine = MappingEngine(load_mapping(settings.mapping.files))
    store = await asyncio.to_thread(open_store, settings.state.url)
    archives = {a.name: DicomwebClient(a) for a in settings.archives}
    fhir = FhirClient(settings.fhir)
    try:
        gone = GoneHandler(fhir=fhir, store=store, policy=settings.realtime.delete_policy)
        runner = SyncRunner(store=store, archives=archives, fhir=fhir, engine=engine,
                            sync=settings.sync, fhir_settings=settings.fhir,
                            worker_id=worker_id, on_gone=gone,
                            **gateway_endpoint_hooks(settings))
        poller = Poller(list(archives.values()), store, interval=settings.sync.poll_interval,
                        window_days=settings.sync.poll_window_days)
        yield SyncContext(settings, store, archives, fhir, engine, runner, poller)
    finally:
        for a in archives.values():
            await a.aclose()
        await fhir.aclose()
        await asyncio.to_thread(store.close)


async def check_fhir_credentials(fhir: FhirClient) -> None:
    """Raise :class:`AuthError` when the FHIR server, or its token endpoint, refuses the
    configured credentials now (a 401 or 403 to the capability statement counts, RFC 9110
    15.5.2/15.5.4).  Any other error is left to the sync, which defers and retries it."""
    try:
        await fhir.capability()
    except AuthError:
        raise
    except FhirRejected as exc:
        if exc.status_code in (401, 403):
            raise AuthError(f"the FHIR server refused the configured credentials: "
                            f"{exc.message}") from exc
    except BridgeError:
        return


def nothing_written_reason(stats: DrainStats) -> str | None:
    """Why a run wrote nothing, when the reason is the credentials: no study was written
    or found unchanged, some were tried, and the outbound auth holds an unresolved failure
    (what the token endpoint or server answered; never a token)."""
    if stats.synced or stats.unchanged or not (stats.retried or stats.failed):
        return None
    failure = AUTH_HEALTH.last_failure()
    if failure is None:
        return None
    return f"credentials refused by {failure.remote}: {failure.message}"


async def worker_loop(ctx: SyncContext, stop: asyncio.Event, *, idle: float = 1.0) -> None:
    """Drain the queue continuously; sleep briefly (or until woken) when nothing is due."""
    while not stop.is_set():
        # cleared *before* claiming: a wake-up set while this batch runs is not lost
        ctx.poller.woke.clear()
        try:
            n = await ctx.runner.run_once(ctx.stats)
        except Exception:  # never let one bad batch kill the worker; the lease expires
            log.exception("worker batch crashed; its studies return when their lease expires")
            n = 0
        if n:
            continue
        for name in ctx.archives:
            depth = await asyncio.to_thread(ctx.store.queue_depth, name)
            QUEUE_DEPTH.labels(archive=name).set(depth)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(stop, ctx.poller.woke), timeout=idle)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def run_service(ctx: SyncContext, stop: asyncio.Event) -> None:
    """Poller plus ``settings.sync.workers`` concurrent batch loops, until ``stop``."""
    tasks = [asyncio.create_task(ctx.poller.run(stop), name="poller")]
    tasks += [asyncio.create_task(worker_loop(ctx, stop), name=f"worker-{i}")
              for i in range(ctx.settings.sync.workers)]
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
