"""DICOMweb gateway with SMART Imaging Access and IHE Invoke Image Display (issue 8).

Every configured archive is served: the default one (``gateway.archive``, else the first)
at ``/dicom-web`` and each one at ``/dicom-web/{archive}`` (:mod:`bridge.gateway.archives`).

Public API::

    install(app, gateway)                  # /dicom-web GET routes + /IHEInvokeImageDisplay
    Gateway(settings.gateway, ...)         # a gateway (bridge.assembly wires the real one)
    app.state.gateway.viewer.mint(patient="Patient/123")   # viewer token for OHIF
    Depends(require_token)                 # the bearer-token dependency, for other routes
"""

from __future__ import annotations

from fastapi import FastAPI

from bridge.gateway.routes import require_token
from bridge.gateway.service import Gateway, SessionResolver
from bridge.gateway.tokens import TokenInfo, TokenValidator
from bridge.gateway.viewer_tokens import ViewerClaims, ViewerTokens
from bridge.sync.endpoints import REQUIRES_ACCESS_TOKEN


def install(app: FastAPI, gateway: Gateway) -> None:
    """Mount the gateway's routers on ``app`` (the composition root builds ``gateway``
    when ``gateway.enabled``)."""
    from bridge.gateway.iid import iid_router
    from bridge.gateway.routes import dicomweb_router

    app.state.gateway = gateway
    # /readyz fails while the EHR's token service refuses the gateway or cannot be reached
    checks = dict(getattr(app.state, "readiness_checks", {}))
    checks["gateway:token-validation"] = gateway.tokens.ready
    app.state.readiness_checks = checks
    app.include_router(dicomweb_router(gateway))
    if gateway.settings.iid_enabled:
        app.include_router(iid_router())


__all__ = [
    "REQUIRES_ACCESS_TOKEN",
    "Gateway",
    "SessionResolver",
    "TokenInfo",
    "TokenValidator",
    "ViewerClaims",
    "ViewerTokens",
    "install",
    "require_token",
]
