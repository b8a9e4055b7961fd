"""DICOMweb gateway with SMART Imaging Access and IHE Invoke Image Display (issue 8).

Public API::

    install(app, settings)                 # /dicom-web GET routes + /IHEInvokeImageDisplay
    app.state.gateway.viewer.mint(patient="Patient/123")   # viewer token for OHIF
    app.state.gateway.session_resolver = resolve            # IID session hook (SMART app)
    Depends(require_token)                 # the bearer-token dependency, for other routes
"""

from __future__ import annotations

from fastapi import FastAPI

from bridge.config import Settings
from bridge.gateway.endpoint import REQUIRES_ACCESS_TOKEN, endpoint_for, endpoint_resource
from bridge.gateway.routes import require_token
from bridge.gateway.service import Gateway, SessionResolver
from bridge.gateway.tokens import TokenInfo, TokenValidator
from bridge.gateway.viewer_tokens import ViewerClaims, ViewerTokens


def install(app: FastAPI, settings: Settings) -> Gateway:
    """Create the gateway and mount its routers on ``app`` (the caller checks
    ``settings.gateway.enabled``)."""
    from bridge.gateway.iid import iid_router
    from bridge.gateway.routes import dicomweb_router

    gateway = Gateway(settings)
    app.state.gateway = gateway
    app.include_router(dicomweb_router(gateway))
    if settings.gateway.iid_enabled:
        app.include_router(iid_router())
    return gateway


__all__ = [
    "REQUIRES_ACCESS_TOKEN",
    "Gateway",
    "SessionResolver",
    "TokenInfo",
    "TokenValidator",
    "ViewerClaims",
    "ViewerTokens",
    "endpoint_for",
    "endpoint_resource",
    "install",
    "require_token",
]
