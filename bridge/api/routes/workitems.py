"""UPS-RS worklist routes (PS3.18 11; issue 17): Search, Retrieve, Change State and Update
Workitem over the worklist room's orders (:mod:`bridge.worklist.ups_book`).

System clients (performers that speak DICOMweb) authenticate as at the STOW-RS proxy: a
bearer token or a basic user of ``worklist.ups_auth`` (401 otherwise).  The routes answer
503 while the worklist room is not running (``worklist.enabled`` off, or starting).  A
refusal answers the PS3.18 status with a ``Warning: 299`` header naming the attribute
(PS3.18 8.2.1 / 11.7.3); a Change State to the state the workitem is already in answers
200 with the warning.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydicom.dataset import Dataset

from bridge.auth.inbound import authenticate
from bridge.config import InboundAuthSettings
from bridge.worklist.ups import UpsError
from bridge.worklist.ups_book import UpsWorklist

router = APIRouter(tags=["ups-rs"])
_JSON = "application/dicom+json"
_SERVICE = "imaging-bridge"


class _Refused(HTTPException):
    """A ready answer (401, 503, 400) carried from the route's helpers to the route, which
    returns it; an HTTPException so that, were it ever to escape, Starlette still answers
    with its status rather than a 500."""

    def __init__(self, response: Response) -> None:
        super().__init__(status_code=response.status_code)
        self.response = response


def _problem(status: int, keyword: str, message: str) -> Response:
    return Response(json.dumps({"detail": message}), status_code=status,
                    media_type="application/json",
                    headers={"Warning": f'299 {_SERVICE} "{keyword}: {message}"'[:512]})


def _error(exc: UpsError) -> Response:
    return _problem(exc.http_status or 400, exc.keyword, str(exc).split(": ", 1)[-1]
                    + (f" ({exc.code})" if exc.code else ""))


def _room(request: Request) -> UpsWorklist:
    for room in getattr(request.app.state, "rooms", None) or ():
        ups: UpsWorklist | None = getattr(room, "ups", None)
        if ups is not None:
            auth: InboundAuthSettings = room.ups_auth
            if authenticate(request.headers.get("authorization"), auth) is None:
                raise _Refused(Response(
                    json.dumps({"detail": "authentication required (worklist.ups_auth)"}),
                    status_code=401, media_type="application/json",
                    headers={"WWW-Authenticate": 'Bearer realm="ups", Basic realm="ups"'}))
            return ups
    raise _Refused(_problem(503, "worklist", "the UPS-RS worklist is not running"))


async def _dataset(request: Request) -> Dataset:
    """The request's one data set (DICOM JSON, PS3.18 F.2: an object or an array of one)."""
    try:
        body: Any = json.loads(await request.body() or b"null")
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        if not isinstance(body, dict):
            raise ValueError("not one DICOM JSON data set")
        return Dataset.from_json(body)
    except (ValueError, TypeError, KeyError) as exc:
        raise _Refused(_problem(400, "payload", f"not a DICOM JSON data set: {exc}"[:200])
                       ) from exc


@router.get("/dicom-web/workitems")
async def search_workitems(request: Request) -> Response:
    """Search Workitems (PS3.18 11.9): QIDO-style matching on the workitems' attributes;
    204 when none matches."""
    try:
        ups = _room(request)
        params = list(request.query_params.multi_items())
        limit = int(request.query_params.get("limit", "100") or 100)
        offset = int(request.query_params.get("offset", "0") or 0)
        found = await asyncio.to_thread(ups.search, params, limit=max(1, min(limit, 1000)),
                                        offset=max(0, offset))
    except _Refused as r:
        return r.response
    except UpsError as exc:
        return _error(exc)
    except ValueError:
        return _problem(400, "limit", "limit and offset are integers")
    if not found:
        return Response(status_code=204)
    return Response(json.dumps(found), media_type=_JSON)


@router.get("/dicom-web/workitems/{uid}")
async def retrieve_workitem(uid: str, request: Request) -> Response:
    """Retrieve Workitem (PS3.18 11.5): the workitem, without its Transaction UID."""
    try:
        ups = _room(request)
        found = await asyncio.to_thread(ups.retrieve, uid)
    except _Refused as r:
        return r.response
    except UpsError as exc:
        return _error(exc)
    return Response(json.dumps([found]), media_type=_JSON)


@router.put("/dicom-web/workitems/{uid}/state")
async def change_workitem_state(uid: str, request: Request) -> Response:
    """Change Workitem State (PS3.18 11.7): Procedure Step State and Transaction UID."""
    try:
        ups = _room(request)
        ds = await _dataset(request)
        _, warning = await asyncio.to_thread(ups.change_state, uid, ds)
    except _Refused as r:
        return r.response
    except UpsError as exc:
        return _error(exc)
    headers = {"Warning": f'299 {_SERVICE} "ProcedureStepState: {warning}"'} if warning else {}
    return Response(status_code=200, headers=headers)


@router.post("/dicom-web/workitems/{uid}")
async def update_workitem(uid: str, request: Request) -> Response:
    """Update Workitem (PS3.18 11.6): ``?transaction=`` the Transaction UID."""
    try:
        ups = _room(request)
        ds = await _dataset(request)
        await asyncio.to_thread(ups.update, uid, txn=request.query_params.get("transaction"),
                                modification=ds)
    except _Refused as r:
        return r.response
    except UpsError as exc:
        return _error(exc)
    return Response(status_code=200)
