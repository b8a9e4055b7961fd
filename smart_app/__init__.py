"""SMART-on-FHIR launch app (EHR and standalone launch, imaging history, viewer hand-off).

Public API::

    smart = SmartApp(settings.smart, base=urls.smart, session_db_url=...)
    app.include_router(smart_routes(smart, sources=..., viewer_session=...))

The composition root (:mod:`bridge.assembly`) builds the :class:`SmartApp` and hands its
session look-ups to the DICOMweb gateway (IHE IID accepts the launch session cookie; a
viewer token ends with the session that minted it).  The router's lifespan opens the app
(``app.state.smart``) and closes it.  Tests serving the app alone build it from a whole
settings with ``tests/support/wiring.py``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from fastapi import APIRouter, FastAPI

from bridge.urls import PublicUrls
from smart_app.launch import LaunchError
from smart_app.outside import OutsideLookup, outside_routes
from smart_app.record_views import record_routes
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


def smart_routes(smart: SmartApp, *, sources: list[DataSource], viewer_session: bool,
                 outside: OutsideLookup | None = None) -> APIRouter:
    """All routes of the app; mount with ``app.include_router`` when ``smart.enabled``.
    ``viewer_session``: OHIF renews its viewer token from the app (with the gateway);
    ``outside``: the outside imaging look-up (``/app/outside``, with sharing)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        smart.open()
        app.state.smart = smart
        app.state.outside = outside  # the history links to /app/outside when set
        try:
            yield
        finally:
            await smart.aclose()

    dist = find_dist(smart.settings.ohif_dist_dir)
    files = OhifFiles(dist, session_script=viewer_session) if dist is not None else None
    router = APIRouter(lifespan=lifespan)
    router.include_router(page_routes(files))
    router.include_router(viewer_session_routes())
    router.include_router(record_routes())  # reports (issue 16)
    if outside is not None:
        router.include_router(outside_routes(outside))
    if files is not None:
        router.include_router(viewer_routes(files, sources=sources))
    else:
        log.warning("OHIF viewer not found: /viewer is not served "
                    "(run docker/local/fetch_ohif.sh and set smart.ohif_dist_dir)")
    return router


__all__ = ["LaunchError", "SmartApp", "smart_routes", "sources_of"]
