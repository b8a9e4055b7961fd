"""SMART-on-FHIR launch app (EHR and standalone launch, imaging history, viewer hand-off).

Public API::

    app.include_router(smart_router(settings))   # /smart/*, /app/*, /viewer/* (OHIF)

The router's lifespan creates the :class:`SmartApp` (``app.state.smart``) and, when the
DICOMweb gateway is installed, gives it the IHE IID session hook
(``app.state.gateway.session_resolver``) so ``/IHEInvokeImageDisplay`` accepts the launch
session cookie.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from starlette.requests import Request

from bridge.config import Settings
from bridge.gateway.endpoint import archive_base, gateway_archive
from bridge.gateway.service import SessionResolver
from bridge.gateway.tokens import TokenInfo
from smart_app.launch import LaunchError
from smart_app.service import SmartApp
from smart_app.viewer import DataSource, OhifFiles, find_dist, viewer_routes
from smart_app.viewer_session import viewer_session_routes
from smart_app.views import smart_routes

log = logging.getLogger(__name__)


def data_sources(settings: Settings) -> list[DataSource]:
    """OHIF's data sources: with the gateway, one per archive named after it (the default
    archive first, at the gateway root); without it, one at ``/dicom-web``."""
    default = gateway_archive(settings) or "bridge"
    if not settings.gateway.enabled:
        return [DataSource(default, "/dicom-web")]
    names = sorted((a.name for a in settings.archives), key=lambda n: n != default)
    return [DataSource(n, archive_base(settings, n)) for n in names]


def session_resolver(smart: SmartApp) -> SessionResolver:
    """The gateway's IID hook: the launch session as a patient-context token."""

    async def resolve(request: Request) -> TokenInfo | None:
        session = await smart.session_of(request)
        if session is None or not session.authenticated:
            return None
        data = session.data
        return TokenInfo(kind="smart", scopes=frozenset(str(data.get("scope", "")).split()),
                         patient=str(data["patient"]), client_id=smart.auth.client_id,
                         expires_at=session.expires_at)

    return resolve


def smart_router(settings: Settings) -> APIRouter:
    """All routes of the app; mount with ``app.include_router`` when ``smart.enabled``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        smart = SmartApp(settings)
        app.state.smart = smart
        gateway = getattr(app.state, "gateway", None)
        if gateway is not None:
            gateway.session_resolver = session_resolver(smart)
            # viewer tokens name the session that minted them: a sign-out ends them too
            store = smart.store

            async def session_alive(session_key: str) -> bool:
                return await asyncio.to_thread(store.is_open, session_key)

            gateway.tokens.session_alive = session_alive
        try:
            yield
        finally:
            await smart.aclose()

    dist = find_dist(settings.smart.ohif_dist_dir)
    # with the gateway, OHIF renews its viewer token from the app (viewer_session)
    files = (OhifFiles(dist, session_script=settings.gateway.enabled)
             if dist is not None else None)
    router = APIRouter(lifespan=lifespan)
    router.include_router(smart_routes(files))
    router.include_router(viewer_session_routes())
    if files is not None:
        router.include_router(viewer_routes(files, sources=data_sources(settings)))
    else:
        log.warning("OHIF viewer not found: /viewer is not served "
                    "(run docker/local/fetch_ohif.sh and set smart.ohif_dist_dir)")
    return router


__all__ = ["LaunchError", "SmartApp", "smart_router"]
