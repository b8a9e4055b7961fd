"""``/docs``: Swagger UI of ``/openapi.json``, served from this origin.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script; the
bridge's Content-Security-Policy (``script-src 'self'``, ``bridge.api.security_headers``)
rightly blocks both, so the page stayed blank.  Here the Swagger UI files come from the
``fastapi-offline`` package (served under ``/docs/static``) and the start-up script is a
file of this origin (``/docs/swagger-initializer.js``): the page works under the same policy
as every other, nothing loaded from elsewhere (a hospital network may not reach a CDN).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

__all__ = ["SWAGGER_UI", "install_docs"]

#: Swagger UI 5 (OpenAPI 3.1, which FastAPI writes) as the ``fastapi-offline`` package ships
#: it; only its files are used, not its page (which starts Swagger UI inline)
SWAGGER_UI = Path(fastapi_offline.__file__).resolve().parent / "static"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" href="/docs/static/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-initializer.js"></script>
</body>
</html>
"""

_INITIALIZER = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
  });
});
"""


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` (the app must be built with ``docs_url=None``)."""
    page = _PAGE.format(title=app.title)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs/swagger-initializer.js", include_in_schema=False)
    async def initializer() -> Response:
        return Response(_INITIALIZER, media_type="text/javascript")

    app.mount("/docs/static", StaticFiles(directory=SWAGGER_UI), name="swagger-ui")
