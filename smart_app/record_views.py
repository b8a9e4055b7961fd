"""The full report page of the SMART app (issue 16): ``/app/report/{id}`` shows a
DiagnosticReport of the launched patient (status, title, dates, interpreters, conclusion and
its text), with a link back to the history; ``/app/report/{id}/form/{n}`` hands out one of
its other presented forms (an encapsulated PDF) as it is.

The report is read with the session's token; one whose subject is not the session's
patient is refused here too, whatever the EHR's scopes allowed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smart_app.history import FhirReadError
from smart_app.launch import LaunchError
from smart_app.record import report_text
from smart_app.views import error_page, render, smart_of

__all__ = ["record_routes"]

_NO_STORE = {"Cache-Control": "no-store"}


def _fhir_id(value: str) -> str:
    if not value.replace("-", "").replace(".", "").isalnum() or len(value) > 64:
        raise LaunchError("Cannot open the report", "not a FHIR id", signed_in=True)
    return value


async def _report(request: Request, fhir_id: str) -> dict[str, Any]:
    smart = smart_of(request)
    session = await smart.session_of(request)
    if session is None or not session.authenticated:
        raise LaunchError("Not signed in", "open this app from the EHR (or start a "
                          "standalone launch) first", status=401)
    reader = smart.reader(session)
    report = await reader.get(f"{reader.base}/DiagnosticReport/{_fhir_id(fhir_id)}")
    patient = str(session.data["patient"]).removeprefix("Patient/")
    if (report.get("subject") or {}).get("reference") != f"Patient/{patient}":
        raise LaunchError("Cannot open the report", "the report is not this patient's",
                          status=403, signed_in=True)
    return report


def record_routes() -> APIRouter:
    """The report routes (mounted with the app's other pages)."""
    router = APIRouter()

    @router.get("/app/report/{fhir_id}")
    async def report_page(request: Request, fhir_id: str) -> Response:
        try:
            report = await _report(request, fhir_id)
        except (LaunchError, FhirReadError) as exc:
            return error_page(exc)
        text, documents = report_text(report)
        code = report.get("code") or {}
        title = code.get("text") or next(
            (c.get("display") or c.get("code") for c in code.get("coding") or []), "Report")
        interpreters = [r.get("display") for r in report.get("resultsInterpreter") or []
                        if isinstance(r, dict) and r.get("display")]
        return render("report.html", report=report, title=title, text=text,
                      documents=documents, interpreters=interpreters)

    @router.get("/app/report/{fhir_id}/form/{index}")
    async def report_form(request: Request, fhir_id: str, index: int) -> Response:
        try:
            report = await _report(request, fhir_id)
            forms = report.get("presentedForm") or []
            if not 0 <= index < len(forms) or not forms[index].get("data"):
                raise LaunchError("Cannot open the document", "the report has no such "
                                  "document", status=404, signed_in=True)
            data = base64.b64decode(forms[index]["data"], validate=True)
        except (LaunchError, FhirReadError) as exc:
            return error_page(exc)
        except (binascii.Error, ValueError):
            return error_page(LaunchError("Cannot open the document", "the EHR's copy is "
                                          "not valid base64", status=502,
                                          signed_in=True))
        kind = str(forms[index].get("contentType") or "application/octet-stream")
        return Response(data, media_type=kind, headers={
            **_NO_STORE, "Content-Disposition": "inline",
            "X-Content-Type-Options": "nosniff",
            # a document from the EHR is shown, never run: no script, no plugin, no form
            "Content-Security-Policy": "sandbox; default-src 'none'; object-src 'none'"})

    return router
