"""Wire the sync engine together from settings, and run it as a long-lived service."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bridge.archive.client import DicomwebClient
from bridge.auth.health import AUTH_HEALTH
from bridge.config import (
    ArchiveSettings,
    DeletePolicy,
    FhirSettings,
    MappingSettings,
    StateSettings,
    SyncSettings,
)
from bridge.errors import AuthError, BridgeError, ConfigError, FhirRejected
from bridge.fhir.capabilities import Needs, missing_capabilities
from bridge.fhir.client import FhirClient
from bridge.mapping import MappingEngine, load_mapping
from bridge.metrics import QUEUE_DEPTH
from bridge.state import StateStore, open_store
from bridge.sync.deletes import GoneHandler
from bridge.sync.endpoints import GatewayEndpoints, runner_options
from bridge.sync.heap import freeze_startup_heap
from bridge.sync.patience import Patience
from bridge.sync.poller import Poller
from bridge.sync.realtime_worker import start_realtime_workers
from bridge.sync.runner import DrainStats, SyncRunner
from bridge.sync.signal import FollowUpSignals, WorkSignal
from bridge.sync.undated import UndatedResult, mark_undated

log = logging.getLogger(__name__)


@dataclass
class SyncContext:
    """The sync's components, built by :func:`open_sync` and closed on its exit."""

    store: StateStore
    archives: dict[str, DicomwebClient]
    fhir: FhirClient
    engine: MappingEngine
    runner: SyncRunner
    poller: Poller
    #: the process's "there is work" signal, shared by every source and drain loop
    work: WorkSignal
    #: the sync's own settings (workers, poll window)
    sync: SyncSettings
    #: what a study gone from the archive does to the EHR (``realtime.delete_policy``)
    delete_policy: DeletePolicy
    stats: DrainStats = field(default_factory=DrainStats)
    #: set when written studies queued follow-up tasks: each room's task worker waits on
    #: its own (``follow_up_signal.of(kind)``)
    follow_up_signal: FollowUpSignals = field(default_factory=FollowUpSignals)
    #: the runner of the real-time lane's reserved workers, on clients of their own (the
    #: same runner when ``sync.realtime_workers`` is 0)
    realtime_runner: SyncRunner | None = None

    @property
    def lane_runner(self) -> SyncRunner:
        """The runner the reserved real-time workers use."""
        return self.realtime_runner or self.runner


@contextlib.asynccontextmanager
async def open_sync(
    *,
    archives: Sequence[ArchiveSettings],
    fhir: FhirSettings,
    mapping: MappingSettings,
    state: StateSettings,
    sync: SyncSettings,
    delete_policy: DeletePolicy,
    endpoints: GatewayEndpoints | None,
    work: WorkSignal,
    worker_id: str | None = None,
    follow_ups: Sequence[str] = (),
    gone_follow_ups: Sequence[str] = (),
) -> AsyncIterator[SyncContext]:
    """Open the store, the clients and the mapping, each from its own settings; close them
    all on exit.  ``endpoints``: the Endpoint policy (:mod:`bridge.sync.endpoints`);
    ``follow_ups``: the task kinds each written study queues (the enabled rooms'), and
    ``gone_follow_ups`` those a study verified gone from the archive queues."""
    if not archives:
        raise ConfigError("no archive configured: set BRIDGE_ARCHIVE__BASE_URL or archives:")
    engine = MappingEngine(load_mapping(mapping.files))
    store = await asyncio.to_thread(open_store, state.url, bulk_share=sync.bulk_share)
    clients = {a.name: DicomwebClient(a) for a in archives}
    fhir_client = FhirClient(fhir)
    # the real-time lane's own clients (issue 19): each client has its connection pool and
    # its `concurrency` request slots, which a backfill fills; a STOW'd study's fetch,
    # patient search and write queued behind them (p95 1.5 s under a 5,000-study backfill)
    rt_clients = {a.name: DicomwebClient(a) for a in archives} if sync.realtime_workers \
        else clients
    rt_fhir = FhirClient(fhir) if sync.realtime_workers else fhir_client
    try:
        gone = GoneHandler(fhir=fhir_client, store=store, policy=delete_policy,
                           follow_ups=gone_follow_ups)
        follow_up_signal = FollowUpSignals()

        def runner_on(archive_clients: dict[str, DicomwebClient],
                      fhir_of_runner: FhirClient) -> SyncRunner:
            return SyncRunner(store=store, archives=archive_clients, fhir=fhir_of_runner,
                              engine=engine, sync=sync, fhir_settings=fhir,
                              worker_id=worker_id, on_gone=gone, follow_ups=follow_ups,
                              follow_up_signal=follow_up_signal,
                              **runner_options(endpoints))

        runner = runner_on(clients, fhir_client)
        realtime_runner = runner_on(rt_clients, rt_fhir) if sync.realtime_workers \
            else runner
        poller = Poller(list(clients.values()), store, interval=sync.poll_interval,
                        window_days=sync.poll_window_days, work=work)
        freeze_startup_heap()  # start-up is done: the drain's collections skip it
        yield SyncContext(store, clients, fhir_client, engine, runner, poller, work, sync,
                          delete_policy, follow_up_signal=follow_up_signal,
                          realtime_runner=realtime_runner)
    finally:
        for a in {*clients.values(), *rt_clients.values()}:
            await a.aclose()
        for f in {fhir_client, rt_fhir}:
            await f.aclose()
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


def capability_needs(ctx: SyncContext) -> Needs:
    """What this deployment's mapping and delete policy ask of the FHIR server."""
    return Needs(patient_create=ctx.engine.mapping.patient.policy == "create",
                 delete=ctx.delete_policy is DeletePolicy.DELETE)


async def check_fhir_capabilities(fhir: FhirClient, needs: Needs) -> None:
    """Raise :class:`ConfigError` naming what the server's CapabilityStatement does not
    declare of what the sync relies on (see :mod:`bridge.fhir.capabilities`); transport
    and auth errors propagate as they are."""
    missing = missing_capabilities(await fhir.capability(), needs)
    if missing:
        raise ConfigError("the FHIR server does not declare what the sync needs: "
                          + "; ".join(missing))


async def announce_capabilities(ctx: SyncContext) -> None:
    """At start-up: one clear log line when the FHIR server does not declare what the sync
    needs.  Not a refusal to start: a server may do more than it declares, and /readyz
    keeps failing with the same words until it is fixed."""
    try:
        await check_fhir_capabilities(ctx.fhir, capability_needs(ctx))
    except ConfigError as exc:
        log.error("FHIR server capabilities incomplete", extra={"detail": exc.message})
    except BridgeError:
        return  # unreachable or refused: the sync's own errors say so


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


async def sweep_undated(
    archives: list[DicomwebClient], store: StateStore, *, window_days: int,
    today: Callable[[], date] = lambda: datetime.now(UTC).date(),
) -> list[UndatedResult]:
    """The undated pass (:mod:`bridge.sync.undated`) outside the poll's window: what the
    poll can never see (StudyDate empty, invalid, older or later) is marked due when new or
    changed.  One archive down does not stop the others; the next sweep tries again."""
    day = today()
    start, end = day - timedelta(days=window_days), day + timedelta(days=1)
    results = []
    for archive in archives:
        try:
            results.append(await mark_undated(archive, store, start=start, end=end,
                                              patience=Patience(seconds=0.0),
                                              reason="backfill"))  # bulk lane: see LANE_OF_REASON
        except Exception as exc:
            log.warning("undated sweep failed", extra={"archive": archive.name,
                                                       "error_type": type(exc).__name__})
    return results


async def undated_loop(ctx: SyncContext, stop: asyncio.Event, *, interval: float) -> None:
    """:func:`sweep_undated` at start and every ``interval`` seconds: ``imaging-bridge
    sync`` has no scheduled reconciliation (``serve`` has) to find those studies."""
    while not stop.is_set():
        results = await sweep_undated(list(ctx.archives.values()), ctx.store,
                                      window_days=ctx.sync.poll_window_days)
        if any(r.marked for r in results):
            ctx.work.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def worker_loop(ctx: SyncContext, stop: asyncio.Event, *, idle: float = 1.0) -> None:
    """Drain the queue continuously; sleep briefly (or until woken) when nothing is due."""
    while not stop.is_set():
        # cleared *before* claiming: a wake-up set while this batch runs is not lost
        ctx.work.clear()
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
            await asyncio.wait_for(_first(stop, ctx.work), timeout=idle)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def run_service(ctx: SyncContext, stop: asyncio.Event, *, undated_interval: float = 0.0
                      ) -> None:
    """Poller plus ``settings.sync.workers`` concurrent batch loops and
    ``settings.sync.realtime_workers`` real-time ones, until ``stop``; with
    ``undated_interval`` > 0 also :func:`undated_loop` (for ``sync`` without ``serve``)."""
    tasks = [asyncio.create_task(announce_capabilities(ctx), name="capabilities"),
             asyncio.create_task(ctx.poller.run(stop), name="poller")]
    tasks += [asyncio.create_task(worker_loop(ctx, stop), name=f"worker-{i}")
              for i in range(ctx.sync.workers)]
    tasks += start_realtime_workers(ctx.lane_runner, ctx.stats, count=ctx.sync.realtime_workers,
                                    wake=ctx.work, stop=stop)
    if undated_interval > 0:
        tasks.append(asyncio.create_task(undated_loop(ctx, stop, interval=undated_interval),
                                         name="undated"))
    try:
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
