"""FastAPI application factory.  The sync engine runs inside the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from bridge import __version__
from bridge.api.routes import admin
from bridge.config import Settings
from bridge.sync.service import run_service, sync_context


def create_app(settings: Settings, *, run_sync: bool = True) -> FastAPI:
    """Build the app; with ``run_sync`` the poller and workers run for the app's lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with sync_context(settings) as ctx:
            app.state.ctx = ctx
            stop = asyncio.Event()
            task = asyncio.create_task(run_service(ctx, stop)) if run_sync else None
            try:
                yield
            finally:
                stop.set()
                if task is not None:
                    await task

    app = FastAPI(title="imaging-fhir-bridge", version=__version__, lifespan=lifespan)
    app.include_router(admin.router)
    return app
