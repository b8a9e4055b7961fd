"""The composition root: the one place that builds the bridge's components from the settings.

Each component gets its own sub-settings and its collaborators through its constructor;
none reads the whole :class:`~bridge.config.Settings`, and nothing is patched after it is
built.  The entry points (``imaging-bridge`` commands, the API app, ``serve``) are the only
modules importing this one (``tests/unit/test_architecture.py`` keeps it so).

What is built, and from what::

    PublicUrls          api, gateway, smart          (bridge.urls: computed once)
    WorkSignal          -                            the process's "there is work"
    sync (SyncContext)  archives, fhir, mapping, state, sync, realtime.delete_policy,
                        the Endpoint policy (gateway, urls)
    RealtimeContext     realtime, over the sync      coalescer, replay memory, the Orthanc
                                                     REST API of each archive, the STOW
                                                     forwarder
    ChangesFeed         realtime.orthanc_changes     over the RealtimeContext
    AuditTrail          audit, fhir, urls.api
    SmartApp            smart, urls.smart, session database
    Gateway             gateway, urls, mapping, archives, fhir, audit, the SMART app's
                        session look-ups (IHE IID cookie, viewer-token sessions), the
                        legacy sources' union (migration.gateway_union)
    follow-ups          sharing, record, worklist    the task kinds each synced (or gone)
                                                     study queues
    room services       migration, worklist,         what ``serve`` runs beside the sync
                        sharing, record              (``room_services``): the migration
                                                     workers, the MWL/MPPS SCP and order
                                                     poller, the publication and record
                                                     task workers

A new capability is one new room (its settings section in ``bridge/sections/``) plus a few
lines here: its builder, its line in ``room_services``, its follow-up kind if any.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from starlette.requests import Request

from bridge.audit import AuditTrail, trail_of
from bridge.config import RealtimeSettings, Settings
from bridge.errors import ConfigError
from bridge.fhir.client import FhirClient
from bridge.gateway.archives import ArchiveRoutes
from bridge.gateway.compartment import PatientMapper
from bridge.gateway.service import Gateway, SessionAlive, SessionResolver
from bridge.gateway.tokens import TokenInfo
from bridge.mapping import load_mapping
from bridge.migration.engine import MigrationService, archive_of, open_migrator
from bridge.migration.gateway_union import LegacyUnion
from bridge.migration.study import StudyMigrator
from bridge.realtime.coalesce import Coalescer
from bridge.realtime.context import RealtimeContext
from bridge.realtime.orthanc_api import OrthancApi
from bridge.realtime.orthanc_changes import ChangesFeed
from bridge.realtime.replays import StoreReplayCache
from bridge.realtime.stow_forward import StowForwarder
from bridge.record.rules import read_dose_rules
from bridge.record.service import RecordService
from bridge.sections.migration import LegacySourceSettings
from bridge.sections.worklist import WorklistSettings
from bridge.sharing.loader import load_sharing_policy
from bridge.sharing.outside import OutsideImaging
from bridge.sharing.publisher import Publisher
from bridge.sharing.service import PublicationService, open_publisher, publication_worker
from bridge.state.store import StateStore
from bridge.state.tasks import RECORD_MAP, SHARE_PUBLISH
from bridge.sync.endpoints import GatewayEndpoints, endpoint_policy, runner_options
from bridge.sync.service import SyncContext, open_sync
from bridge.sync.signal import WorkSignal
from bridge.sync.tasks_worker import TaskWorker
from bridge.urls import PublicUrls
from bridge.worklist.link import WORKLIST_LINK, StudyLinker
from bridge.worklist.loader import load_worklist_mapping
from bridge.worklist.mpps_store import MPPS_REPORT, MppsKeeper
from bridge.worklist.orders import OrderBook
from bridge.worklist.poller import OrderPoller, OrderQuery, Window
from bridge.worklist.progress import ProgressReporter
from bridge.worklist.scp import WorklistScp
from bridge.worklist.service import WorklistService
from bridge.worklist.source import InMemoryWorklist
from bridge.worklist.subscription import ensure_subscription, order_criteria
from bridge.worklist.ups_book import UpsWorklist
from smart_app import SmartApp, sources_of
from smart_app.gateway_port import ImagingGateway
from smart_app.viewer import DataSource


def public_urls(settings: Settings) -> PublicUrls:
    """The deployment's public URLs, computed once."""
    return PublicUrls.of(api=settings.api, gateway=settings.gateway, smart=settings.smart,
                         archives=[a.name for a in settings.archives])


def endpoints(settings: Settings, *, urls: PublicUrls) -> GatewayEndpoints | None:
    """Where ImagingStudy.endpoint points: the gateway, when it is enabled."""
    return endpoint_policy(gateway=settings.gateway.enabled, iid=settings.gateway.iid_enabled,
                           urls=urls, archives=[a.name for a in settings.archives])


def follow_ups(settings: Settings) -> tuple[str, ...]:
    """The task kinds each study the sync writes queues: the enabled rooms' follow-ups."""
    kinds: list[str] = []
    if settings.sharing.enabled:
        kinds.append(SHARE_PUBLISH)
    if settings.record.enabled:
        kinds.append(RECORD_MAP)
    if settings.worklist.enabled and settings.worklist.link_studies:
        kinds.append(WORKLIST_LINK)
    return tuple(kinds)


def gone_follow_ups(settings: Settings) -> tuple[str, ...]:
    """The task kinds a study verified gone from the archive queues: its sharing manifest
    is deprecated (the record keeps its reports)."""
    return (SHARE_PUBLISH,) if settings.sharing.enabled else ()


@contextlib.asynccontextmanager
async def sync_part(settings: Settings, *, urls: PublicUrls, work: WorkSignal,
                    worker_id: str | None = None) -> AsyncIterator[SyncContext]:
    """The sync engine (store, clients, mapping, runner, poller), closed on exit."""
    async with open_sync(archives=settings.archives, fhir=settings.fhir,
                         mapping=settings.mapping, state=settings.state, sync=settings.sync,
                         delete_policy=settings.realtime.delete_policy,
                         endpoints=endpoints(settings, urls=urls), work=work,
                         worker_id=worker_id, follow_ups=follow_ups(settings),
                         gone_follow_ups=gone_follow_ups(settings)) as ctx:
        yield ctx


def orthanc_apis(rt: RealtimeSettings, sync: SyncContext) -> dict[str, OrthancApi]:
    """Orthanc's REST API behind each archive (a change or notification may name any);
    ``realtime.orthanc_changes.url`` overrides the root of its own archive's."""
    changes = rt.orthanc_changes
    return {name: OrthancApi(archive, url=changes.url if changes is not None
                             and changes.archive == name else None)
            for name, archive in sync.archives.items()}


def stow_forwarder(rt: RealtimeSettings, sync: SyncContext) -> StowForwarder | None:
    """The streaming client of ``realtime.stow_archive`` (default the first archive);
    None when it names no configured archive (the proxy then answers with that error)."""
    name = rt.stow_archive
    archive = next(iter(sync.archives.values()), None) if name is None \
        else sync.archives.get(name)
    return StowForwarder(archive, timeout=rt.stow_timeout) if archive is not None else None


def realtime_part(settings: Settings, sync: SyncContext) -> RealtimeContext:
    """The real-time sources' shared part over ``sync``: they mark studies due through one
    coalescer, which sets the sync's work signal; the replay memory lives in the state
    store, so processes sharing the store refuse each other's replays too.  The clients
    built here are closed by :func:`close_realtime`."""
    rt = settings.realtime
    coalescer = Coalescer(sync.store, wake=sync.work, quiet_period=rt.quiet_period,
                          max_coalesce=rt.max_coalesce)
    return RealtimeContext(sync=sync, settings=rt, coalescer=coalescer,
                           replays=StoreReplayCache(sync.store, window=rt.signature_tolerance),
                           orthanc=orthanc_apis(rt, sync), stow=stow_forwarder(rt, sync))


def changes_feed(realtime: RealtimeContext) -> ChangesFeed | None:
    """The Orthanc ``/changes`` poller when ``realtime.orthanc_changes`` is set."""
    changes = realtime.settings.orthanc_changes
    if changes is None:
        return None
    api = realtime.orthanc.get(changes.archive)
    if api is None:
        raise ConfigError(f"realtime.orthanc_changes: no archive named {changes.archive!r} "
                          "is configured")
    return ChangesFeed(realtime, api, interval=changes.interval, limit=changes.limit)


async def close_realtime(realtime: RealtimeContext) -> None:
    """Close the clients :func:`realtime_part` built."""
    if realtime.stow is not None:
        await realtime.stow.aclose()
    for api in realtime.orthanc.values():
        await api.aclose()


def smart_app(settings: Settings, *, urls: PublicUrls) -> SmartApp:
    """The SMART app (its sessions in ``smart.session_db_url``, else the state store's
    database; opened by its router's lifespan)."""
    return SmartApp(settings.smart, base=urls.smart,
                    session_db_url=settings.smart.session_db_url or settings.state.url)


def smart_part(settings: Settings, *, urls: PublicUrls) -> SmartApp | None:
    """The SMART app when ``smart.enabled``."""
    return smart_app(settings, urls=urls) if settings.smart.enabled else None


def session_resolver(smart: SmartApp) -> SessionResolver:
    """The gateway's IHE IID hook: the launch session as a patient-context token."""

    async def resolve(request: Request) -> TokenInfo | None:
        session = await smart.session_of(request)
        if session is None or not session.authenticated:
            return None
        data = session.data
        return TokenInfo(kind="smart", scopes=frozenset(str(data.get("scope", "")).split()),
                         patient=str(data["patient"]), client_id=smart.auth.client_id,
                         expires_at=session.expires_at)

    return resolve


def gateway_of(settings: Settings, *, urls: PublicUrls, fhir: FhirClient | None = None,
               audit: AuditTrail | None = None, session_resolver: SessionResolver | None = None,
               session_alive: SessionAlive | None = None) -> Gateway:
    """The DICOMweb gateway, on ``fhir`` (else a client of its own, closed with it)."""
    mapper = PatientMapper(load_mapping(settings.mapping.files))
    archives = ArchiveRoutes(settings.archives, gateway=settings.gateway, urls=urls,
                             mapper=mapper)
    legacy = (LegacyUnion.of(settings.migration, state_url=settings.state.url)
              if settings.migration.gateway_union else None)
    return Gateway(settings.gateway, public_base=urls.gateway, mapper=mapper,
                   archives=archives, fhir=fhir or FhirClient(settings.fhir),
                   own_fhir=fhir is None, audit=audit, session_resolver=session_resolver,
                   session_alive=session_alive, legacy=legacy)


def gateway_part(settings: Settings, *, urls: PublicUrls, audit: AuditTrail | None,
                 smart: SmartApp | None) -> Gateway | None:
    """The DICOMweb gateway when ``gateway.enabled``, with the SMART app's session
    look-ups when the app is enabled too."""
    if not settings.gateway.enabled:
        return None
    gateway = gateway_of(settings, urls=urls, audit=audit,
                         session_resolver=session_resolver(smart) if smart else None,
                         session_alive=smart.session_alive if smart else None)
    _as_seen_by_the_app: ImagingGateway = gateway  # the SMART app's view of it (typed)
    return gateway


def data_sources(settings: Settings, *, urls: PublicUrls) -> list[DataSource]:
    """OHIF's data sources (one per archive behind the gateway)."""
    return sources_of(urls, [a.name for a in settings.archives],
                      gateway=settings.gateway.enabled)


@dataclass(frozen=True)
class PublicParts:
    """What the public listener serves, built once when the app is created."""

    urls: PublicUrls
    audit: AuditTrail
    smart: SmartApp | None
    gateway: Gateway | None
    sources: list[DataSource]
    #: outside imaging for the SMART app (issue 14), with sharing and the app enabled
    outside: OutsideImaging | None = None


def public_parts(settings: Settings) -> PublicParts:
    urls = public_urls(settings)
    audit = trail_of(settings.audit, fhir=settings.fhir, server_address=urls.api)
    smart = smart_part(settings, urls=urls)
    gateway = gateway_part(settings, urls=urls, audit=audit, smart=smart)
    return PublicParts(urls, audit, smart, gateway, data_sources(settings, urls=urls),
                       outside_imaging(settings) if smart is not None else None)


def worklist_service(wl: WorklistSettings, *, fhir: FhirClient,
                     store: StateStore | None = None,
                     notify_url: str | None = None) -> WorklistService:
    """The Modality Worklist SCP over the EHR's orders, read by a poller on ``fhir``
    (issue 17); with ``store``, the MPPS SCP on the same AE and its reports to the EHR
    (``worklist.mpps`` tasks) and the links of synced studies to their orders
    (``worklist.link``).  Its mapping file is validated here, at start-up."""
    mapping = load_worklist_mapping(wl.mapping_file)
    worklist = InMemoryWorklist()
    book = OrderBook(mapping)
    poller = OrderPoller(
        fhir=fhir, book=book, worklist=worklist,
        query=OrderQuery(category=wl.order_category, page_size=wl.page_size,
                         overlap=wl.poll_overlap),
        window=Window(before=wl.window_days_before, after=wl.window_days_after,
                      timezone=mapping.timezone))
    mpps = reporter = linker = None
    if store is not None and wl.mpps:
        mpps = MppsKeeper(store)
        progress = ProgressReporter(fhir=fhir, store=store, timezone=mapping.timezone,
                                    complete_order=wl.complete_order_on_mpps,
                                    needs_study=wl.complete_order_needs_study)
        reporter = TaskWorker(store, MPPS_REPORT, progress.handle, worker_id="worklist-mpps",
                              idle=wl.tasks_idle)
    if store is not None and wl.link_studies:
        queue = store
        again = (lambda uid: queue.enqueue_task(MPPS_REPORT, uid)) \
            if wl.mpps and wl.complete_order_needs_study else None
        linking = StudyLinker(fhir=fhir, mapping=mapping, book=book, report_again=again)
        linker = TaskWorker(store, WORKLIST_LINK, linking.handle, worker_id="worklist-link",
                            idle=wl.tasks_idle)
    scp = WorklistScp(source=worklist, ae_title=wl.ae_title,
                      calling_ae_titles=wl.calling_ae_titles, host=wl.host, port=wl.port,
                      mpps=mpps)
    # UPS-RS over the same items, its states kept as the MPPS store's steps
    ups = UpsWorklist(source=worklist, keeper=mpps, timezone=mapping.timezone) \
        if mpps is not None and wl.ups else None
    subscribe = None
    if wl.subscribe and notify_url and wl.notification_auth.bearer_tokens:
        token = wl.notification_auth.bearer_tokens[0].get_secret_value()
        subscribe = functools.partial(ensure_subscription, fhir,
                                      criteria=order_criteria(wl.order_category),
                                      endpoint=notify_url, token=token)
    return WorklistService(scp=scp, poller=poller, interval=wl.poll_interval,
                           reporter=reporter, linker=linker, ups=ups, ups_auth=wl.ups_auth,
                           notification_auth=wl.notification_auth, subscribe=subscribe)


def migration_source(settings: Settings, name: str) -> LegacySourceSettings:
    """The legacy source ``name`` of ``migration.sources``; ConfigError naming it."""
    try:
        return settings.migration.source(name)
    except KeyError:
        raise ConfigError(f"migration.sources: no legacy source named {name!r}") from None


def migrator_of(settings: Settings, source: str
                ) -> contextlib.AbstractAsyncContextManager[StudyMigrator]:
    """The per-study migration step of ``source`` into the migration's archive (issue 15)."""
    migration = settings.migration
    return open_migrator(migration_source(settings, source), migration=migration,
                         archive=archive_of(settings.archives, migration.archive))


def migration_service(settings: Settings, sync: SyncContext) -> MigrationService:
    """Every legacy source's migration worker, for ``serve`` (``migration.run_in_serve``)."""
    migration = settings.migration
    return MigrationService(sync.store, migration=migration,
                            archive=archive_of(settings.archives, migration.archive))


def sharing_publisher(settings: Settings, *, sync: SyncContext,
                      urls: PublicUrls | None = None
                      ) -> contextlib.AbstractAsyncContextManager[Publisher]:
    """The Imaging Document Source's publisher (issue 14) over the sync's archive
    clients: its policy validated here, at start-up; the manifests' Retrieve URL is the
    gateway's public WADO-RS root of each archive, so the gateway must be enabled."""
    sharing = settings.sharing
    if sharing.registry is None:
        raise ConfigError("sharing.registry is not set (the MHD document registry)")
    if not settings.gateway.enabled:
        raise ConfigError("sharing.enabled needs gateway.enabled: the manifests' Retrieve "
                          "URL is the gateway's, where partner sites retrieve the images")
    urls = urls or public_urls(settings)
    policy = load_sharing_policy(sharing.policy_file)
    bases = {a.name: urls.archive(a.name) for a in settings.archives}
    return open_publisher(readers=sync.archives, archives=settings.archives,
                          registry=sharing.registry, policy=policy, retrieve_bases=bases,
                          register_patients=sharing.register_patients)


def outside_imaging(settings: Settings) -> OutsideImaging | None:
    """The Imaging Document Consumer's look-up of a patient's outside studies (issue 14),
    when sharing is enabled: the EHR's identifier systems (the mapping's patient issuers)
    into the affinity domain by the sharing policy's issuer map."""
    sharing = settings.sharing
    if not sharing.enabled or sharing.registry is None:
        return None
    issuers = load_mapping(settings.mapping.files).patient.issuers
    return OutsideImaging(sharing.registry,
                          local_systems={k: v.system for k, v in issuers.items()},
                          domain=load_sharing_policy(sharing.policy_file).affinity_domain)


def sharing_service(settings: Settings, *, sync: SyncContext,
                    urls: PublicUrls) -> PublicationService:
    """``serve``'s publication worker: ``share.publish`` tasks, woken by the sync (its
    settings and policy checked now, at start-up)."""
    return PublicationService(
        publisher=sharing_publisher(settings, sync=sync, urls=urls),
        worker=lambda pub: publication_worker(sync.store, pub, settings.sharing,
                                              worker_id=f"{sync.runner.worker_id}-sharing",
                                              signal=sync.follow_up_signal.of(
                                                  SHARE_PUBLISH)))


def record_service(settings: Settings, *, sync: SyncContext) -> RecordService:
    """``serve``'s record worker (issue 16): ``record.map`` tasks over the sync's archive
    and FHIR clients, woken by the sync; the dose rules are read here, at start-up."""
    return RecordService(sync.store, archives=sync.archives, fhir=sync.fhir,
                         rules=read_dose_rules(settings.record.dose_rules_file),
                         settings=settings.record, worker_id=f"{sync.runner.worker_id}-record",
                         signal=sync.follow_up_signal.of(RECORD_MAP))


class RoomService(Protocol):
    """A room's long-running part (a worklist SCP, a publication loop, a migration
    worker), run by ``serve`` beside the sync until ``stop`` is set.  It closes what it
    opened before returning; an error it cannot handle ends only itself (logged)."""

    name: str

    async def run(self, stop: asyncio.Event) -> None: ...


def room_services(settings: Settings, *, sync: SyncContext,
                  urls: PublicUrls) -> list[RoomService]:
    """The long-running parts of the rooms their settings enable (issues 14-17): each room
    adds its line here."""
    rooms: list[RoomService] = []
    if settings.migration.run_in_serve and settings.migration.sources:
        rooms.append(migration_service(settings, sync))
    if settings.worklist.enabled:
        rooms.append(worklist_service(settings.worklist, fhir=sync.fhir, store=sync.store,
                                      notify_url=f"{urls.api}/worklist/notify"
                                      if settings.worklist.subscribe else None))
    if settings.sharing.enabled:
        rooms.append(sharing_service(settings, sync=sync, urls=urls))
    if settings.record.enabled:
        rooms.append(record_service(settings, sync=sync))
    return rooms


@dataclass
class Running:
    """The services of one run of the app: the sync, the real-time sources, the rooms."""

    sync: SyncContext
    realtime: RealtimeContext
    #: the Orthanc changes poller, when configured (run in the background by the app)
    feed: ChangesFeed | None = None
    #: the enabled rooms' long-running parts (run in the background by the app)
    rooms: list[RoomService] = field(default_factory=list)


@contextlib.asynccontextmanager
async def services(settings: Settings, *, urls: PublicUrls) -> AsyncIterator[Running]:
    """The sync, real-time and room parts for one run (the app's lifespan), closed on
    exit."""
    async with sync_part(settings, urls=urls, work=WorkSignal()) as ctx:
        realtime = realtime_part(settings, ctx)
        try:
            yield Running(ctx, realtime, changes_feed(realtime),
                          room_services(settings, sync=ctx, urls=urls))
        finally:
            await close_realtime(realtime)


def sync_only(settings: Settings, *, worker_id: str | None = None
              ) -> contextlib.AbstractAsyncContextManager[SyncContext]:
    """The sync engine alone, for the commands that run no app (sync, backfill,
    reconcile)."""
    return sync_part(settings, urls=public_urls(settings), work=WorkSignal(),
                     worker_id=worker_id)


def endpoint_options(settings: Settings) -> dict[str, Any]:
    """The Endpoint policy's ``SyncRunner``/``StudyAssembly`` keyword arguments (what the
    sync writes as ImagingStudy.endpoint), for the mapping preview."""
    if not settings.gateway.enabled:
        return {}  # the mapping's own Endpoints, addressing the archives
    return runner_options(endpoints(settings, urls=public_urls(settings)))
