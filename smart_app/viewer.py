"""The OHIF viewer (``@ohif/app`` 3.13 ``dist/``) served at ``/viewer/``.

The npm build is made for the site root (``window.PUBLIC_URL="/"``, webpack public path
``"/"``, root-absolute ``src``/``href``/``url(...)``), so the few files that say so are
rewritten for the ``/viewer/`` prefix as they are served (once, then kept in memory).
``/viewer/app-config.js`` is generated: one DICOMweb data source per archive behind the
gateway, named after the archive, whose QIDO and WADO roots are that archive's gateway base
(the default archive's, the default data source, is the root ``/dicom-web``),
``imageRendering: wadors``.  OHIF's mode routes are ``/{mode}`` (default data source) and
``/{mode}/{sourceName}`` (``routes/buildModeRoutes.tsx``: "/:modeId/:modeRoute/:sourceType"),
so ``/viewer/viewer/{archive}?StudyInstanceUIDs=...`` opens a study of another archive; the
viewer token is sent to whichever data source is active.

Opening a study is ``/viewer/viewer?StudyInstanceUIDs=<uid>&token=<viewer token>``: OHIF's
``routes/Mode/Mode.tsx`` reads the ``token`` query parameter (case-insensitively) and
``updateAuthServiceAndCleanUrl`` installs it in its ``userAuthenticationService`` as
``Authorization: Bearer <token>``, which the DICOMweb data source and the image loader add
to every QIDO/WADO request; the parameter is then removed from the address bar with
``history.replaceState``.  No cookie is involved: the gateway sees only the bearer token.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

PREFIX = "/viewer/"
DEFAULT_DIST = Path.home() / ".cache" / "imaging-bridge" / "ohif" / "3.13.2" / "package" / "dist"
_HASHED = re.compile(r"\.[0-9a-f]{16}\.(js|css)$|^[0-9a-f]{16}\.(wasm|woff2)$")
_WEBPACK_PUBLIC_PATH = b'__webpack_require__.p = "/";'
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")


def find_dist(configured: Path | None) -> Path | None:
    for candidate in (configured, DEFAULT_DIST):
        if candidate is not None and (candidate / "index.html").is_file():
            return candidate.resolve()
    return None


@dataclass(frozen=True, slots=True)
class DataSource:
    """One OHIF DICOMweb data source: ``name`` is its ``sourceName`` (the route segment)."""

    name: str
    root: str


def _source(source: DataSource) -> dict[str, Any]:
    return {
        "namespace": "@ohif/extension-default.dataSourcesModule.dicomweb",
        "sourceName": source.name,
        "configuration": {
            "friendlyName": f"{source.name} (patient-scoped DICOMweb gateway)",
            "name": source.name,
            "qidoRoot": source.root,
            "wadoRoot": source.root,
            "wadoUriRoot": source.root,
            "qidoSupportsIncludeField": False,
            "imageRendering": "wadors",
            "thumbnailRendering": "wadors",
            "enableStudyLazyLoad": True,
            "supportsFuzzyMatching": False,
            "supportsWildcard": False,
            "staticWado": False,
            "singlepart": "bulkdata,video",
            "omitQuotationForMultipartRequest": True,
            "bulkDataURI": {"enabled": True, "relativeResolution": "studies"},
        },
    }


def app_config(*, sources: Sequence[DataSource]) -> str:
    """OHIF ``window.config`` with the gateway's archives as data sources, the first one
    the default."""
    if not sources:
        raise ValueError("OHIF needs at least one data source")
    config: dict[str, Any] = {
        "routerBasename": PREFIX.rstrip("/"),
        "extensions": [],
        "modes": [],
        "customizationService": {},
        "showStudyList": False,
        "investigationalUseDialog": {"option": "never"},
        "showWarningMessageForCrossOrigin": False,
        "showCPUFallbackMessage": False,
        "showLoadingIndicator": True,
        "strictZSpacingForVolumeViewport": True,
        "maxNumberOfWebWorkers": 2,
        "maxNumRequests": {"interaction": 100, "thumbnail": 5, "prefetch": 10},
        "defaultDataSourceName": sources[0].name,
        "dataSources": [_source(s) for s in sources],
    }
    return "window.config = " + json.dumps(config, indent=2) + ";\n"


class OhifFiles:
    """Serves files of one ``dist/`` with the ``/viewer/`` prefix patched in."""

    def __init__(self, dist: Path) -> None:
        self.dist = dist
        self._patched: dict[str, bytes] = {}

    def _patch(self, rel: str, raw: bytes) -> bytes:
        prefix = PREFIX.encode()
        if rel == "index.html":
            raw = raw.replace(b'window.PUBLIC_URL="/"', b'window.PUBLIC_URL="' + prefix + b'"')
            raw = raw.replace(b'src="/', b'src="' + prefix).replace(b'href="/', b'href="' + prefix)
        elif rel.endswith(".css"):
            raw = raw.replace(b"url(/", b"url(" + prefix)
        elif rel.endswith(".js") and _WEBPACK_PUBLIC_PATH in raw:
            raw = raw.replace(_WEBPACK_PUBLIC_PATH,
                              b'__webpack_require__.p = "' + prefix + b'";')
        return raw

    def resolve(self, rel: str) -> Path | None:
        path = (self.dist / rel).resolve()
        if not path.is_relative_to(self.dist) or not path.is_file():
            return None
        return path

    def response(self, rel: str) -> Response:
        path = self.resolve(rel) if rel else None
        if path is None:  # single-page app: every route is index.html
            rel, path = "index.html", self.dist / "index.html"
        name = path.relative_to(self.dist).as_posix()
        cache = ("public, max-age=31536000, immutable" if _HASHED.search(path.name)
                 else "no-cache")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        needs_patch = name == "index.html" or (
            "/" not in name and (name.endswith(".css") or name.endswith(".js")))
        if needs_patch:
            body = self._patched.get(name)
            if body is None:
                body = self._patch(name, path.read_bytes())
                self._patched[name] = body
            return Response(body, media_type=media, headers={"Cache-Control": cache})
        return FileResponse(path, media_type=media, headers={"Cache-Control": cache})


def viewer_routes(dist: Path, *, sources: Sequence[DataSource]) -> APIRouter:
    files = OhifFiles(dist)
    config_js = app_config(sources=sources)
    router = APIRouter(tags=["viewer"], include_in_schema=False)

    @router.get("/viewer/app-config.js")
    async def ohif_config() -> Response:
        return Response(config_js, media_type="text/javascript",
                        headers={"Cache-Control": "no-store"})

    @router.get("/viewer")
    async def viewer_root() -> Response:
        return files.response("")

    @router.get("/viewer/{rel:path}")
    async def viewer_file(rel: str, request: Request) -> Response:
        if request.method != "GET":
            raise HTTPException(405)
        return files.response(rel)

    return router
