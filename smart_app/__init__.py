"""SMART-on-FHIR launch app (EHR and standalone launch, imaging history, viewer hand-off).

Public API::

    smart = SmartApp(settings.smart, base=urls.smart, session_db_url=...)
    app.include_router(smart_routes(smart, sources=..., viewer_session=...))

The composition root (:mod:`bridge.assembly`) builds the :class:`SmartApp` and hands its
session look-ups to the DICOMweb gateway (IHE IID accepts the launch session cookie; a
viewer token ends with the session that minted it).  The router's lifespan opens the app
(``app.state.smart``) and closes it.  :func:`smart_router` builds all of it from the whole
settings, for tests and tools that serve the app alone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from fastapi import APIRouter, FastAPI

from bridge.config import Settings
from bridge.urls import PublicUrls
from smart_app.launch import LaunchError
from smart_app.service import SmartApp
from smart_app.viewer import DataSource, OhifFiles, find_dist, viewer_routes
from smart_app.viewer_session import viewer_session_routes
from smart_app.views import smart_routes as page_routes

log = logging.getLogger(__name__)


def sources_of(urls: PublicUrls, archives: Sequence[str], *, gateway: bool
               ) -> list[DataSource]:
    """OHIF's data sources: with the gateway, one per archive named after it (the default
    archive first, at the gateway root); without it, one at ``/dicom-web``."""
    default = urls.default_archive or "bridge"
    if not gateway:
        return [DataSource(default, "/dicom-web")]
    names = sorted(archives, key=lambda n: n != default)
    return [DataSource(n, urls.archive(n)) for n in names]


def _urls(settings: Settings) -> PublicUrls:
    return PublicUrls.of(api=settings.api, gateway=settings.gateway, smart=settings.smart,
                         archives=[a.name for a in settings.archives])


def data_sources(settings: Settings) -> list[DataSource]:
    """:func:`sources_of` from the whole settings."""
    return sources_of(_urls(settings), [a.name for a in settings.archives],
                      gateway=settings.gateway.enabled)


def smart_routes(smart: SmartApp, *, sources: list[DataSource], viewer_session: bool
                 ) -> APIRouter:
    """All routes of the app; mount with ``app.include_router`` when ``smart.enabled``.
    ``viewer_session``: OHIF renews its viewer token from the app (with the gateway)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        smart.open()
        app.state.smart = smart
        try:
            yield
        finally:
            await smart.aclose()

    dist = find_dist(smart.settings.ohif_dist_dir)
    files = OhifFiles(dist, session_script=viewer_session) if dist is not None else None
    router = APIRouter(lifespan=lifespan)
    router.include_router(page_routes(files))
    router.include_router(viewer_session_routes())
    if files is not None:
        router.include_router(viewer_routes(files, sources=sources))
    else:
        log.warning("OHIF viewer not found: /viewer is not served "
                    "(run docker/local/fetch_ohif.sh and set smart.ohif_dist_dir)")
    return router


def smart_app_of(settings: Settings) -> SmartApp:
    """The :class:`SmartApp` of the settings (its sessions in ``smart.session_db_url``,
    else the state store's database)."""
    return SmartApp(settings.smart, base=_urls(settings).smart,
                    session_db_url=settings.smart.session_db_url or settings.state.url)


def smart_router(settings: Settings) -> APIRouter:
    """:func:`smart_routes` of a :class:`SmartApp` built from the whole settings (the app
    served alone: no gateway hooks)."""
    return smart_routes(smart_app_of(settings), sources=data_sources(settings),
                        viewer_session=settings.gateway.enabled)


__all__ = ["LaunchError", "SmartApp", "smart_app_of", "smart_router", "smart_routes",
           "sources_of"]
