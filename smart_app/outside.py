"""Outside imaging of the launched patient (issue 14): ``/app/outside`` (a page) and
``/app/outside.json``, the studies other sites shared for the patient through the health
network's document registry.

The app depends on one operation, :class:`OutsideLookup` (the composition root wires
:class:`bridge.sharing.outside.OutsideImaging`): given the EHR Patient's identifiers, the
outside studies and the documents that could not be read.  The identifiers are read from
the EHR with the session's token, like the history; the lookup maps them into the
affinity domain (never by name).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bridge.errors import BridgeError
from smart_app.history import FhirReadError
from smart_app.launch import LaunchError
from smart_app.views import _authenticated, error_page, render, smart_of

log = logging.getLogger(__name__)


class OutsideStudy(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def source(self) -> str | None: ...

    @property
    def study_date(self) -> str | None: ...

    @property
    def study_uid(self) -> str: ...

    @property
    def modalities(self) -> tuple[str, ...]: ...


class OutsideProblem(Protocol):
    @property
    def message(self) -> str: ...

    @property
    def field(self) -> str: ...

    @property
    def document(self) -> str | None: ...


class OutsideAnswer(Protocol):
    @property
    def studies(self) -> Sequence[OutsideStudy]: ...

    @property
    def problems(self) -> Sequence[OutsideProblem]: ...

    @property
    def asked(self) -> int: ...


class OutsideLookup(Protocol):
    async def for_patient(self, identifiers: Sequence[Mapping[str, Any]]) -> OutsideAnswer: ...


async def _outside_of(request: Request, lookup: OutsideLookup) -> OutsideAnswer:
    smart = smart_of(request)
    session = await _authenticated(request)
    reader = smart.reader(session)
    patient = str(session.data["patient"]).removeprefix("Patient/")
    body = await reader.get(f"{reader.base}/Patient/{patient}")
    identifiers = [i for i in body.get("identifier") or [] if isinstance(i, dict)]
    try:
        return await lookup.for_patient(identifiers)
    except BridgeError as exc:
        log.warning("outside imaging lookup failed", extra={"error_type": exc.kind})
        raise FhirReadError("the health network's document registry did not answer "
                            f"({exc.kind})", status=502) from exc


def _json(answer: OutsideAnswer) -> dict[str, Any]:
    return {
        "asked": answer.asked,
        "studies": [{"document": s.id, "source": s.source, "study_date": s.study_date,
                     "study_uid": s.study_uid, "modalities": list(s.modalities)}
                    for s in answer.studies],
        "problems": [{"document": p.document, "field": p.field, "message": p.message}
                     for p in answer.problems],
    }


def outside_routes(lookup: OutsideLookup) -> APIRouter:
    """``GET /app/outside`` and ``GET /app/outside.json`` for the launched patient."""
    router = APIRouter()

    @router.get("/app/outside")
    async def outside_page(request: Request) -> Response:
        try:
            answer = await _outside_of(request, lookup)
        except (LaunchError, FhirReadError) as exc:
            return error_page(exc)
        return render("outside.html", outside=answer)

    @router.get("/app/outside.json")
    async def outside_json(request: Request) -> Response:
        try:
            answer = await _outside_of(request, lookup)
        except (LaunchError, FhirReadError) as exc:
            detail = exc.detail if isinstance(exc, LaunchError) else exc.message
            return JSONResponse({"error": detail}, status_code=exc.http_status or 502,
                                headers={"Cache-Control": "no-store"})
        return JSONResponse(_json(answer), headers={"Cache-Control": "no-store"})

    return router
