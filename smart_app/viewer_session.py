"""Fresh viewer tokens for the app's own OHIF page: ``POST /app/viewer-token``.

A viewer token lives at most five minutes (:data:`bridge.gateway.viewer_tokens.MAX_LIFETIME`)
and is never refreshed; a clinician reads a study for longer.  So the OHIF page asks this
endpoint for a new one, with the SMART session's cookie, well before the current one
expires (``viewer_session.js``, served at ``/viewer/bridge-session.js``, installs it as
OHIF's ``userAuthenticationService.getAuthorizationHeader``).  The token travels only in
this response body and in ``Authorization`` headers: never in a URL, never in a log line.

While the session lives, each answer is a new token for the session's patient, bound to the
session (``sid``: the gateway refuses it once the session ends) and expiring no later than
the session.  Once the session has ended (signed out from another tab, expired, deleted),
the answer is 401 ``{"error": "session_ended"}`` and the page shows "Session ended —
relaunch from the EHR" instead of black viewports.

Cross-site use is refused: the cookie is SameSite=Lax (a cross-site POST carries none), a
browser's ``Sec-Fetch-Site`` must say same-origin (Fetch Metadata), and the request must
carry the custom header :data:`RENEW_HEADER`, which no form can send and which makes a
cross-origin ``fetch`` need a CORS preflight this service never grants (OWASP CSRF cheat
sheet, "Custom request headers").  The answer is not readable cross-origin anyway (no
CORS), and carries ``Cache-Control: no-store`` as a token response must (RFC 6749 5.1).
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from smart_app.gateway_port import ImagingGateway
from smart_app.service import SmartApp
from smart_app.sessions import session_id

log = logging.getLogger(__name__)

TOKEN_PATH = "/app/viewer-token"
#: the header the page's script sends (its value is not checked, only its presence)
RENEW_HEADER = "x-bridge-viewer"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _refused(status: int, error: str, description: str) -> JSONResponse:
    headers = dict(_NO_STORE)
    if status == 401:  # RFC 9110 11.6.1: a 401 names a scheme (here: the session cookie)
        headers["WWW-Authenticate"] = 'Cookie realm="imaging-app", error="session_ended"'
    return JSONResponse({"error": error, "error_description": description},
                        status_code=status, headers=headers)


def viewer_session_routes() -> APIRouter:
    router = APIRouter(tags=["smart-app"], include_in_schema=False)

    @router.post(TOKEN_PATH)
    async def viewer_token(request: Request) -> JSONResponse:
        smart: SmartApp = request.app.state.smart
        gateway: ImagingGateway | None = getattr(request.app.state, "gateway", None)
        if gateway is None:
            return _refused(404, "not_available", "no DICOMweb gateway: no viewer tokens")
        site = request.headers.get("sec-fetch-site", "same-origin")
        if site != "same-origin" or RENEW_HEADER not in request.headers:
            log.warning("viewer token request refused", extra={"status": 403,
                                                               "error_type": "csrf"})
            return _refused(403, "forbidden", "only the app's own viewer page may ask")
        session = await smart.session_of(request)
        if session is None or not session.authenticated:
            return _refused(401, "session_ended", "the app session has ended: relaunch "
                            "the app from the EHR")
        # never beyond the session: its end is the viewer's end (SMART 2.2 app protection)
        lifetime = min(gateway.viewer.lifetime, session.expires_at - time.time())
        if lifetime < 1:
            return _refused(401, "session_ended", "the app session has ended: relaunch "
                            "the app from the EHR")
        token = gateway.viewer.mint(patient=str(session.data["patient"]),
                                    session=session_id(session), lifetime=lifetime)
        return JSONResponse({"access_token": token, "token_type": "Bearer",
                             "expires_in": max(1, int(lifetime))}, headers=_NO_STORE)

    return router
