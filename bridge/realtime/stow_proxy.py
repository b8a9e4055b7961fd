"""``POST /dicom-web/studies[/{uid}]``: a streaming STOW-RS proxy to the archive.

PS3.18 10.5 (Store Transaction).  The request body is streamed to the archive's STOW-RS as
it arrives (an async generator over ``request.stream()``; never buffered), checked on the
way by :class:`MultipartInspector`: a fault aborts the upstream request *before* its last
byte, and the client is told so.  The archive's status and body are returned unchanged
(PS3.18 10.5.3: 200 all stored, 202 some failed with a Failed SOP Sequence or warnings,
409 none stored).  The studies the response reports as stored are then made due at once.

Authentication (system clients): ``Authorization: Bearer <token>`` or ``Basic`` against
``realtime.stow_auth``; 401 otherwise.  Archive unreachable: 503 with Retry-After.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from bridge.auth.inbound import authenticate
from bridge.dicom_uid import STUDY_UID_TAG, is_valid_uid, uid_segment
from bridge.realtime.context import RealtimeContext
from bridge.realtime.metrics import STOW_REQUESTS, STOW_SECONDS
from bridge.realtime.multipart import MultipartError, MultipartInspector, parse_content_type
from bridge.realtime.stow_forward import UpstreamAborted
from bridge.realtime.stow_response import stored_studies
from bridge.state.enums import Reason

log = logging.getLogger(__name__)
router = APIRouter()

#: seconds a client should wait before retrying when the archive is down (RFC 9110 10.2.3)
RETRY_AFTER = "30"
_PASS_HEADERS = ("content-type", "warning", "retry-after")


def _rt(request: Request) -> RealtimeContext:
    rt: RealtimeContext = request.app.state.realtime
    return rt


Rt = Annotated[RealtimeContext, Depends(_rt)]


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    STOW_REQUESTS.labels(status=str(status)).inc()
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


@router.post("/dicom-web/studies")
async def stow(request: Request, rt: Rt) -> Response:
    """Store instances (PS3.18 10.5.1, any study)."""
    return await _stow(request, rt, study_uid=None)


@router.post("/dicom-web/studies/{study_uid}")
async def stow_study(study_uid: str, request: Request, rt: Rt) -> Response:
    """Store instances of one study (PS3.18 10.5.1; the archive refuses others, 409)."""
    return await _stow(request, rt, study_uid=study_uid)


async def _stow(request: Request, rt: Rt, *, study_uid: str | None) -> Response:
    response = await _proxy(request, rt, study_uid=study_uid)
    rt.stats.stow_requests[str(response.status_code)] += 1
    return response


async def _proxy(request: Request, rt: Rt, *, study_uid: str | None) -> Response:
    started = time.perf_counter()
    client_name = authenticate(request.headers.get("authorization"), rt.settings.stow_auth)
    if client_name is None:
        configured = rt.settings.stow_auth.bearer_tokens or rt.settings.stow_auth.basic_users
        message = ("authentication required (Bearer token or Basic credentials)" if configured
                   else "the STOW proxy has no credentials configured (realtime.stow_auth)")
        return _problem(401, message,
                        {"WWW-Authenticate": 'Bearer realm="stow", Basic realm="stow"'})
    if study_uid is not None and not is_valid_uid(study_uid):
        # the path's UID goes into the archive's URL: "%2e%2e" would address /dicom-web
        # itself (PS3.5 9.1; RFC 3986 5.2.4 dot segments)
        return _problem(400, f"{STUDY_UID_TAG} in the path is not a valid DICOM UID "
                        "(PS3.5 9.1)")
    try:
        inspector = MultipartInspector(parse_content_type(request.headers.get("content-type")))
    except MultipartError as exc:
        return _problem(exc.http_status, exc.message)
    forwarder = rt.stow_forwarder()
    path = f"studies/{uid_segment(study_uid)}" if study_uid else "studies"
    extra = {"archive": forwarder.archive.name, "client": client_name}
    try:
        resp, sent = await forwarder.forward(request, path=path, inspector=inspector)
    except UpstreamAborted as exc:
        log.warning("STOW upload refused mid-stream", extra={**extra, "detail": str(exc)})
        return _problem(exc.http_status,
                        f"{exc.error}; the upload to the archive was aborted after {exc.sent} "
                        "bytes, before it completed, so the archive should have stored "
                        "nothing from this request")
    except ClientDisconnect:
        log.info("STOW client went away mid-upload; upstream request aborted", extra=extra)
        return _problem(400, "client disconnected before the end of the body")
    except httpx.TimeoutException:
        return _problem(504, f"archive {forwarder.archive.name!r} did not answer within "
                        f"{rt.settings.stow_timeout:.0f} s; it may still store the upload")
    except httpx.HTTPError as exc:
        log.warning("STOW archive unreachable", extra={**extra, "error_type": type(exc).__name__})
        return _problem(503, f"archive {forwarder.archive.name!r} is unreachable "
                        f"({type(exc).__name__}); nothing was stored, retry later",
                        {"Retry-After": RETRY_AFTER})
    headers = {k: v for k, v in resp.headers.items() if k.lower() in _PASS_HEADERS}
    if resp.status_code in (502, 503, 504) and "retry-after" not in resp.headers:
        headers["Retry-After"] = RETRY_AFTER
    uids = stored_studies(resp.content, resp.headers.get("content-type"), path_uid=study_uid) \
        if resp.status_code in (200, 202, 409) else set()
    for uid in sorted(uids):
        await rt.coalescer.touch(forwarder.archive.name, uid, reason=Reason.STOW)
    rt.stats.stow_studies += len(uids)
    STOW_REQUESTS.labels(status=str(resp.status_code)).inc()
    STOW_SECONDS.observe(time.perf_counter() - started)
    log.info("STOW proxied", extra={**extra, "status": resp.status_code, "bytes": sent,
                                    "parts": inspector.parts, "studies": len(uids)})
    return Response(resp.content, status_code=resp.status_code, headers=headers)
