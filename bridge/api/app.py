"""FastAPI application factory.  The sync engine runs inside the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from bridge import __version__
from bridge.api.routes import admin, jwks
from bridge.config import Settings
from bridge.gateway import install as install_gateway
from bridge.httpbody import BodyLimit
from bridge.realtime import RealtimeContext, notifications, stow_proxy
from bridge.realtime.service import start_realtime
from bridge.sync.service import run_service, sync_context
from smart_app import smart_router


def create_app(settings: Settings, *, run_sync: bool = True) -> FastAPI:
    """Build the app; with ``run_sync`` the poller and workers run for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with sync_context(settings) as ctx:
            app.state.ctx = ctx
            stop = asyncio.Event()
            task = asyncio.create_task(run_service(ctx, stop)) if run_sync else None
            realtime = RealtimeContext.create(ctx)
            app.state.realtime = realtime
            realtime_tasks = start_realtime(realtime, stop, background=run_sync)
            try:
                yield
            finally:
                stop.set()
                if task is not None:
                    await task
                await asyncio.gather(*realtime_tasks, return_exceptions=True)
                await realtime.aclose()

    app = FastAPI(title="imaging-fhir-bridge", version=__version__, lifespan=lifespan)
    app.include_router(admin.router)
    app.include_router(jwks.router)
    app.include_router(notifications.router)
    app.include_router(stow_proxy.router)
    if settings.gateway.enabled:  # GET /dicom-web/*, /IHEInvokeImageDisplay (issue 8)
        install_gateway(app, settings)
    if settings.smart.enabled:  # /smart, /app, /viewer (issue 7)
        app.include_router(smart_router(settings))
    # every other body is read at most 1 MiB, whatever the route does (issue 12 item 5)
    app.add_middleware(BodyLimit, exempt=bounds_itself)
    return app


def bounds_itself(method: str, path: str) -> bool:
    """Routes that bound their own bodies: the STOW-RS proxy streams each upload to the
    archive as it reads it; ``/notifications`` reads at most its own cap."""
    return method == "POST" and (path in ("/notifications", "/dicom-web/studies")
                                 or path.startswith("/dicom-web/studies/"))
