"""FastAPI application factory.  The sync engine runs inside the app's lifespan.

The routes form two faces (issue 12 item 6):

* public: the DICOMweb gateway, the SMART app, the STOW-RS proxy, ``/notifications``,
  the JWKS; each authenticates its own callers;
* admin: ``/status``, ``/studies/{uid}``, ``/metrics``, behind ``api.admin_auth``.

``/healthz`` and ``/readyz`` are on both.  By default one listener (``api.host``/``port``)
serves both faces; with ``api.admin_port`` the admin face has a listener of its own, so it
can sit on an interface patients' browsers never reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from fastapi import Depends, FastAPI

from bridge import __version__, assembly
from bridge.api.admin_auth import admin_guard, announce
from bridge.api.docs import install_docs
from bridge.api.openapi import document
from bridge.api.routes import admin, jwks, order_notifications, workitems
from bridge.api.security_headers import SecurityHeaders
from bridge.audit import install as install_audit
from bridge.config import Settings
from bridge.gateway import install as install_gateway
from bridge.httpbody import BodyLimit
from bridge.realtime import notifications, stow_proxy
from bridge.realtime.service import start_realtime
from bridge.sync.service import run_service
from smart_app import smart_routes


@dataclass(frozen=True)
class Listener:
    """One app and the address it is served on."""

    name: str  # "public" or "admin"
    app: FastAPI
    host: str
    port: int

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, run_sync: bool = True) -> FastAPI:
    """The app served on ``api.host:api.port``; with ``run_sync`` the poller and workers run
    for its lifetime.  It carries the admin routes too unless ``api.admin_port`` is set."""
    return create_listeners(settings, run_sync=run_sync)[0].app


def create_listeners(settings: Settings, *, run_sync: bool = True) -> list[Listener]:
    """The public listener first (its lifespan runs the service for all), then the admin
    listener when ``api.admin_port`` is set."""
    api = settings.api
    separate = api.admin_port is not None
    admin_app = _admin_app(settings) if separate else None
    public = _public_app(settings, run_sync=run_sync, peers=[admin_app] if admin_app else [])
    _guarded_admin_routes(admin_app or public, settings)
    for app in (public, admin_app):  # /openapi.json: summaries, security schemes (issue 13)
        if app is not None:
            document(app, admin_open=api.admin_auth == "none")
    listeners = [Listener("public", public, api.host, api.port)]
    if admin_app is not None and api.admin_port is not None:
        listeners.append(Listener("admin", admin_app, api.admin_host or api.host,
                                  api.admin_port))
    return listeners


def _public_app(settings: Settings, *, run_sync: bool, peers: Sequence[FastAPI]) -> FastAPI:
    parts = assembly.public_parts(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        announce(settings.api.admin_auth, listener="admin" if peers else "public")
        async with assembly.services(settings, urls=parts.urls) as running:
            ctx, realtime = running.sync, running.realtime
            stop = asyncio.Event()
            task = asyncio.create_task(run_service(ctx, stop)) if run_sync else None
            for shared in (app, *peers):  # one service, seen by every listener
                shared.state.ctx = ctx
                shared.state.realtime = realtime
                shared.state.rooms = running.rooms  # UPS-RS, /status (issue 17)
            for peer in peers:  # the gateway's readiness checks (introspection credentials)
                peer.state.readiness_checks = getattr(app.state, "readiness_checks", {})
            realtime_tasks = start_realtime(realtime, stop, background=run_sync,
                                            feed=running.feed)
            room_tasks = [asyncio.create_task(_run_room(room, stop), name=room.name)
                          for room in running.rooms] if run_sync else []
            try:
                yield
            finally:
                stop.set()
                if task is not None:
                    await task
                await asyncio.gather(*realtime_tasks, *room_tasks, return_exceptions=True)

    # /docs from this origin (bridge.api.docs): FastAPI's page needs a CDN and inline script
    app = FastAPI(title="imaging-fhir-bridge", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None)
    install_docs(app)
    app.include_router(admin.health_router)
    app.include_router(jwks.router)
    app.include_router(notifications.router)
    app.include_router(stow_proxy.router)
    app.include_router(workitems.router)  # UPS-RS worklist (issue 17)
    app.include_router(order_notifications.router)  # the EHR's rest-hook (issue 17)
    # access decisions: log lines, AuditEvents (issue 20)
    install_audit(app, parts.audit, smart=settings.smart)
    if parts.gateway is not None:  # GET /dicom-web/*, /IHEInvokeImageDisplay (issue 8)
        install_gateway(app, parts.gateway)
    if parts.smart is not None:  # /smart, /app, /viewer (issue 7)
        app.include_router(smart_routes(parts.smart, sources=parts.sources,
                                        viewer_session=parts.gateway is not None,
                                        outside=parts.outside))
    _middleware(app, settings)
    return app


async def _run_room(room: assembly.RoomService, stop: asyncio.Event) -> None:
    """One room's long-running part; its failure ends it alone, with one log line."""
    try:
        await room.run(stop)
    except Exception:
        log.exception("room service stopped on an error", extra={"room": room.name})


def _admin_app(settings: Settings) -> FastAPI:
    """The admin listener's app: no lifespan of its own, the public one shares its state."""
    app = FastAPI(title="imaging-fhir-bridge admin", version=__version__, docs_url=None,
                  redoc_url=None)
    install_docs(app)
    app.include_router(admin.health_router)
    _middleware(app, settings)
    return app


def _guarded_admin_routes(app: FastAPI, settings: Settings) -> None:
    app.include_router(admin.router, dependencies=[Depends(admin_guard(settings.api.admin_auth))])


def _middleware(app: FastAPI, settings: Settings) -> None:
    # every other body is read at most 1 MiB, whatever the route does (issue 12 item 5)
    app.add_middleware(BodyLimit, exempt=bounds_itself)
    app.add_middleware(SecurityHeaders, frame_sources=settings.api.frame_ancestors)


def bounds_itself(method: str, path: str) -> bool:
    """Routes that bound their own bodies: the STOW-RS proxy streams each upload to the
    archive as it reads it; ``/notifications`` reads at most its own cap."""
    return method == "POST" and (path in ("/notifications", "/dicom-web/studies")
                                 or path.startswith("/dicom-web/studies/"))
