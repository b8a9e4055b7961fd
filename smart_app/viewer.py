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

Delivery: the build is about 45 MB of JavaScript and CSS for a first open (app.bundle alone
is 17 MB), which over a hospital WAN, not loopback, is what a clinician waits for.  Text
assets and wasm are therefore sent gzip-compressed to browsers that accept it (RFC 9110
8.4; app.bundle 17 MB -> 3.6 MB), compressed once and kept in memory, and hashed files are
``immutable`` (RFC 8246) so a browser asks once per OHIF version.  The history page names
the app bundle and its stylesheet as ``<link rel="prefetch">`` and starts preparing the
bundles in the background: the largest downloads happen while the user reads the list, not
after the click on "Open".

Content-Security-Policy (CSP Level 3; issue 12 item 8): every ``/viewer/`` response carries
:func:`ohif_policy`, what OHIF needs and no more: its scripts from this origin plus the two
inline scripts of ``index.html`` by hash (never ``'unsafe-inline'`` for scripts);
``'wasm-unsafe-eval'`` for the image codecs (WebAssembly); inline styles (React sets
``style``); ``blob:`` and ``data:`` images; web workers from this origin and ``blob:``;
connections to this origin and to the gateway's.  The codecs' Emscripten glue (embind)
also builds functions from strings (``new Function``) when a codec starts, so the scripts
of OHIF's web workers, which decode JPEG 2000, JPEG-LS and JPEG, need ``'unsafe-eval'``
too: without it only uncompressed images render.  A worker is governed by the policy
delivered with its own script (CSP Level 3 "Integration with HTML"), so ``'unsafe-eval'``
is given only to responses the browser fetches for a worker (``Sec-Fetch-Dest``, Fetch
Metadata): the page itself, which holds the DOM, runs without it.  A browser that sends
no ``Sec-Fetch-Dest`` gets the worker policy everywhere (codecs work, the page is less
strict).  The service's security headers (:mod:`bridge.api.security_headers`) add
``frame-ancestors``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import logging
import mimetypes
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

log = logging.getLogger(__name__)

PREFIX = "/viewer/"
#: served compressed (text and wasm); images and fonts are compressed already
_COMPRESSIBLE = (".js", ".css", ".wasm", ".json", ".svg", ".html", ".map", ".txt")
#: gzip level 4: app.bundle 17 MB -> 3.6 MB in 0.28 CPU-s (level 6: 3.4 MB, 0.54 s)
_GZIP_LEVEL = 4
DEFAULT_DIST = Path.home() / ".cache" / "imaging-bridge" / "ohif" / "3.13.2" / "package" / "dist"
_HASHED = re.compile(r"\.[0-9a-f]{16}\.(js|css)$|^[0-9a-f]{16}\.(wasm|woff2)$")
_WEBPACK_PUBLIC_PATH = b'__webpack_require__.p = "/";'
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
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


#: the app's script inside OHIF (viewer-token renewal from ``/app/viewer-token``, see
#: :mod:`smart_app.viewer_session`; "session ended"; a link back to the history), served at
#: :data:`SESSION_SCRIPT_URL` and loaded by index.html right after app-config.js, whose
#: ``window.config.extensions`` it extends before OHIF's bundle reads them
SESSION_SCRIPT = (Path(__file__).parent / "templates" / "viewer_session.js").read_bytes()
SESSION_SCRIPT_URL = PREFIX + "bridge-session.js"
_CONFIG_TAG = b'src="' + PREFIX.encode() + b'app-config.js"></script>'


def app_config(*, sources: Sequence[DataSource]) -> str:
    """OHIF ``window.config`` with the gateway's archives as data sources, the first one
    the default."""
    if not sources:
        raise ValueError("OHIF needs at least one data source")
    config: dict[str, Any] = {
        "routerBasename": PREFIX.rstrip("/"),
        "extensions": [],
        "modes": [],
        # no Shepherd.js onboarding tour over the first image: a clinician launched from
        # the EHR came to read a study (OHIF >= 3.10 takes tours from this customization)
        "customizationService": {"ohif.tours": {"$set": []}},
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


#: ``Sec-Fetch-Dest`` values of a page (the policy without ``'unsafe-eval'``)
_PAGE_DESTINATIONS = frozenset({"document", "iframe", "frame"})


def ohif_policy(*, inline_scripts: Sequence[bytes], sources: Sequence[DataSource],
                worker: bool = False) -> str:
    """OHIF's Content-Security-Policy (module doc), ``inline_scripts`` allowed by their
    SHA-256 (CSP Level 3 "hash-source") and each data source's origin for connect-src;
    ``worker``: the policy of a web worker's script, which may evaluate strings."""
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
              for body in inline_scripts]
    origins = sorted({f"{p.scheme}://{p.netloc}" for s in sources
                      if (p := urlsplit(s.root)).scheme in ("http", "https")})
    return "; ".join([
        "default-src 'self'",
        " ".join(["script-src 'self' 'wasm-unsafe-eval'",
                  *(["'unsafe-eval'"] if worker else []), *hashes]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        " ".join(["connect-src 'self' data: blob:", *origins]),
        "worker-src 'self' blob:",
        "media-src 'self' data: blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "manifest-src 'self'",
    ])


class OhifFiles:
    """Serves files of one ``dist/`` with the ``/viewer/`` prefix patched in, gzipped for
    browsers that accept it."""

    def __init__(self, dist: Path, *, session_script: bool = False) -> None:
        self.dist = dist
        #: index.html loads :data:`SESSION_SCRIPT_URL` (with the gateway: viewer tokens)
        self.session_script = session_script
        if session_script and b'src="/app-config.js"></script>' not in (
                dist / "index.html").read_bytes():  # refused at start-up, not per request
            raise ValueError(f"{dist / 'index.html'} loads no /app-config.js: this OHIF "
                             "build cannot take the viewer-token script")
        #: name -> (identity body, gzip body or None); only files that were asked for
        self._bodies: dict[str, tuple[bytes, bytes | None]] = {}
        self._lock = threading.Lock()
        self._warming = False

    def _patch(self, rel: str, raw: bytes) -> bytes:
        prefix = PREFIX.encode()
        if rel == "index.html":
            raw = raw.replace(b'window.PUBLIC_URL="/"', b'window.PUBLIC_URL="' + prefix + b'"')
            raw = raw.replace(b'src="/', b'src="' + prefix).replace(b'href="/', b'href="' + prefix)
            if self.session_script:
                raw = raw.replace(_CONFIG_TAG, _CONFIG_TAG + b'<script src="'
                                  + SESSION_SCRIPT_URL.encode() + b'"></script>', 1)
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

    @staticmethod
    def _needs_patch(name: str) -> bool:
        return name == "index.html" or (
            "/" not in name and (name.endswith(".css") or name.endswith(".js")))

    def _bodies_of(self, name: str, path: Path) -> tuple[bytes, bytes | None]:
        """The (patched) body and its gzip, made once (two requests may both make it)."""
        found = self._bodies.get(name)
        if found is None:
            raw = path.read_bytes()
            body = self._patch(name, raw) if self._needs_patch(name) else raw
            packed = gzip.compress(body, _GZIP_LEVEL, mtime=0) if len(body) > 1024 else None
            found = (body, packed if packed is not None and len(packed) < len(body) else None)
            with self._lock:
                self._bodies[name] = found
        return found

    def response(self, rel: str, *, accept_gzip: bool = False) -> Response:
        path = self.resolve(rel) if rel else None
        if path is None:  # single-page app: every route is index.html
            rel, path = "index.html", self.dist / "index.html"
        name = path.relative_to(self.dist).as_posix()
        cache = ("public, max-age=31536000, immutable" if _HASHED.search(path.name)
                 else "no-cache")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        headers = {"Cache-Control": cache}
        if not (self._needs_patch(name) or name.endswith(_COMPRESSIBLE)):
            return FileResponse(path, media_type=media, headers=headers)
        body, packed = self._bodies_of(name, path)
        headers["Vary"] = "Accept-Encoding"
        if accept_gzip and packed is not None:
            headers["Content-Encoding"] = "gzip"
            return Response(packed, media_type=media, headers=headers)
        return Response(body, media_type=media, headers=headers)

    def inline_scripts(self) -> list[bytes]:
        """The bodies of the inline ``<script>`` elements of the (patched) index.html."""
        index = self.dist / "index.html"
        body, _ = self._bodies_of("index.html", index)
        return _INLINE_SCRIPT.findall(body)

    def prefetch_urls(self) -> list[str]:
        """What the history page prefetches: the app bundle and its stylesheet (the first
        and largest downloads of every open; the chunks follow from the bundle)."""
        names = sorted(p.name for p in self.dist.glob("app.bundle*")
                       if (p.suffix in (".js", ".css") and _HASHED.search(p.name))
                       or p.name == "app.bundle.css")
        return [PREFIX + n for n in names]

    def warm(self) -> None:
        """Prepare (patch, compress) every top-level script and stylesheet in a background
        thread, once per process: the first "Open" then costs no server CPU."""
        with self._lock:
            if self._warming:
                return
            self._warming = True

        def run() -> None:
            for path in sorted(self.dist.iterdir(), key=lambda p: p.name):
                if path.is_file() and path.suffix in (".js", ".css"):
                    try:
                        self._bodies_of(path.name, path)
                    except OSError as exc:
                        log.warning("viewer asset not prepared", extra={
                            "asset": path.name, "error_type": type(exc).__name__})

        threading.Thread(target=run, name="ohif-warm", daemon=True).start()


def accepts_gzip(request: Request) -> bool:
    """RFC 9110 12.5.3: gzip listed (any q but 0)."""
    for item in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=").strip()
            try:
                return not params.strip() or float(q) > 0
            except ValueError:
                return True
    return False


def viewer_routes(files: OhifFiles, *, sources: Sequence[DataSource]) -> APIRouter:
    config_js = app_config(sources=sources)
    scripts = files.inline_scripts()
    page_policy = ohif_policy(inline_scripts=scripts, sources=sources)
    worker_policy = ohif_policy(inline_scripts=scripts, sources=sources, worker=True)
    router = APIRouter(tags=["viewer"], include_in_schema=False)

    @router.get("/viewer/app-config.js")
    async def ohif_config() -> Response:
        return Response(config_js, media_type="text/javascript",
                        headers={"Cache-Control": "no-store",
                                 "Content-Security-Policy": page_policy})

    @router.get(SESSION_SCRIPT_URL)
    async def session_script() -> Response:
        if not files.session_script:
            raise HTTPException(404)
        return Response(SESSION_SCRIPT, media_type="text/javascript",
                        headers={"Cache-Control": "no-cache",
                                 "Content-Security-Policy": page_policy})

    async def served(rel: str, request: Request) -> Response:
        # reading (and the first time compressing) a 17 MB bundle is not for the event loop
        resp = await asyncio.to_thread(files.response, rel, accept_gzip=accepts_gzip(request))
        # the page's policy, or a worker script's own (module doc)
        page = request.headers.get("sec-fetch-dest") in _PAGE_DESTINATIONS
        resp.headers["Content-Security-Policy"] = page_policy if page else worker_policy
        # one URL, two policies: caches must keep them apart (RFC 9110 12.5.5)
        vary = resp.headers.get("vary")
        resp.headers["Vary"] = f"{vary}, Sec-Fetch-Dest" if vary else "Sec-Fetch-Dest"
        return resp

    @router.get("/viewer")
    async def viewer_root(request: Request) -> Response:
        return await served("", request)

    @router.get("/viewer/{rel:path}")
    async def viewer_file(rel: str, request: Request) -> Response:
        if request.method != "GET":
            raise HTTPException(405)
        return await served(rel, request)

    return router
