"""The OpenAPI document of the bridge's HTTP APIs, served at ``/openapi.json`` and ``/docs``.

FastAPI builds the document from the routes; :func:`document` adds what it cannot know:
a summary, tag and the error answers of every operation, the security schemes (OpenAPI 3.1
section 4.8.27) and which one each operation takes.  The table :data:`OPERATIONS` is keyed
by (method, path) as FastAPI writes them; ``tests/unit/test_openapi_coverage.py`` fails
when a served route has no entry, so a new route cannot go undocumented.

Security schemes:

* ``ehrToken``: the EHR's SMART access token of a patient or a system (introspected at the
  EHR), or a viewer token minted by the SMART app; the gateway and IID.
* ``smartSession``: the SMART app's launch session cookie; the app pages and IID.
* ``adminBasic`` / ``adminBearer``: ``api.admin_auth``; the admin API.
* ``stowBearer`` / ``stowBasic``: ``realtime.stow_auth``; the STOW-RS proxy.
* ``upsBearer`` / ``upsBasic``: ``worklist.ups_auth``; the UPS-RS worklist.
* ``orderNotifyBearer`` / ``orderNotifyBasic``: ``worklist.notification_auth``; the
  EHR's rest-hook Subscription notifications of changed orders.
* ``notificationSignature``: HMAC-SHA256 of ``timestamp.body`` with
  ``realtime.webhook_secret`` in ``X-Bridge-Signature``, the time in ``X-Bridge-Timestamp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from smart_app.sessions import COOKIE_NAME

__all__ = ["OPERATIONS", "SECURITY_SCHEMES", "Operation", "document"]

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "ehrToken": {
        "type": "http", "scheme": "bearer",
        "description": "SMART access token issued by the EHR (checked by introspection or "
                       "as a JWT, gateway.* settings), or a viewer token minted by the SMART "
                       "app. A patient token sees only its patient's studies."},
    "smartSession": {
        "type": "apiKey", "in": "cookie", "name": COOKIE_NAME,
        "description": "The SMART app's session, set after an EHR or standalone launch."},
    "adminBasic": {"type": "http", "scheme": "basic",
                   "description": "A user of api.admin_auth.basic_users."},
    "adminBearer": {"type": "http", "scheme": "bearer",
                    "description": "A token of api.admin_auth.bearer_tokens."},
    "stowBearer": {"type": "http", "scheme": "bearer",
                   "description": "A token of realtime.stow_auth.bearer_tokens."},
    "stowBasic": {"type": "http", "scheme": "basic",
                  "description": "A user of realtime.stow_auth.basic_users."},
    "upsBearer": {"type": "http", "scheme": "bearer",
                  "description": "A token of worklist.ups_auth.bearer_tokens."},
    "upsBasic": {"type": "http", "scheme": "basic",
                 "description": "A user of worklist.ups_auth.basic_users."},
    "orderNotifyBearer": {"type": "http", "scheme": "bearer",
                          "description": "A token of worklist.notification_auth.bearer_tokens."},
    "orderNotifyBasic": {"type": "http", "scheme": "basic",
                         "description": "A user of worklist.notification_auth.basic_users."},
    "notificationSignature": {
        "type": "apiKey", "in": "header", "name": "X-Bridge-Signature",
        "description": "sha256=<hex HMAC-SHA256(realtime.webhook_secret, timestamp + '.' + "
                       "body)>, with X-Bridge-Timestamp: <unix seconds> (within "
                       "realtime.signature_tolerance); a signature is accepted once."},
}

_PUBLIC: list[dict[str, list[str]]] = []
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "public": _PUBLIC,
    "gateway": [{"ehrToken": []}],
    "iid": [{"ehrToken": []}, {"smartSession": []}],
    "session": [{"smartSession": []}],
    "admin": [{"adminBasic": []}, {"adminBearer": []}],
    "stow": [{"stowBearer": []}, {"stowBasic": []}],
    "signed": [{"notificationSignature": []}],
    "ups": [{"upsBearer": []}, {"upsBasic": []}],
    "orders": [{"orderNotifyBearer": []}, {"orderNotifyBasic": []}],
}
_ERRORS: dict[str, dict[str, str]] = {
    "public": {},
    "gateway": {"400": "Malformed request or parameter (PS3.18 8.6)",
                "401": "Missing, invalid, expired or revoked token",
                "403": "The token may not see this study (another patient's, or unknown: "
                       "one answer, no existence oracle)",
                "502": "The archive answered with an error or not at all"},
    "iid": {"400": "Bad or missing parameter (named in the answer)",
            "401": "No token and no SMART app session",
            "403": "The session's patient may not open this study"},
    "session": {"401": "No SMART app session"},
    "admin": {"401": "Missing or wrong admin credentials"},
    "stow": {"400": "Not a multipart/related body of DICOM instances",
             "401": "Missing or wrong STOW credentials",
             "409": "The archive refused the instances (PS3.18 10.5.3)",
             "503": "The archive is unreachable; nothing was stored"},
    "ups": {"400": "Malformed request; the Warning header names the attribute",
            "401": "Missing or wrong UPS credentials",
            "404": "No such workitem",
            "409": "Not possible in the workitem's state (Warning names the attribute)",
            "503": "The worklist room is not running"},
    "orders": {"401": "Missing or wrong notification credentials",
               "503": "The worklist room is not running"},
    "signed": {"400": "Malformed notification body",
               "401": "Unsigned, wrongly signed, stale or replayed request",
               "413": "Body over 1 MiB",
               "503": "Notifications not configured, or the replay check is unavailable"},
}


@dataclass(frozen=True)
class Operation:
    """Documentation of one served operation."""

    tag: str
    summary: str
    security: str  # a key of _SECURITY


_DICOM_WEB = "dicom-web"
_STUDY_RESOURCE = ("WADO-RS / QIDO-RS below one study: series, instances, metadata, frames, "
                   "rendered, bulkdata (PS3.18 10.4, 10.6)")

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/healthz"): Operation("operations", "Liveness: the process answers", "public"),
    ("GET", "/readyz"): Operation(
        "operations", "Readiness: archives, FHIR server and token checks answer", "public"),
    ("GET", "/.well-known/jwks.json"): Operation(
        "operations", "The bridge's public signing keys (SMART Backend Services, JWKS)",
        "public"),
    ("POST", "/notifications"): Operation(
        "realtime", "Receive signed study events from an archive (202, processed after)",
        "signed"),
    ("POST", "/dicom-web/studies"): Operation(
        "stow-rs", "STOW-RS: store instances in the archive; the study syncs at once "
        "(PS3.18 10.5)", "stow"),
    ("POST", "/dicom-web/studies/{study_uid}"): Operation(
        "stow-rs", "STOW-RS: store instances of one study (PS3.18 10.5)", "stow"),
    ("GET", "/dicom-web/studies"): Operation(
        _DICOM_WEB, "QIDO-RS: search the token's visible studies (PS3.18 10.6)", "gateway"),
    ("GET", "/dicom-web/series"): Operation(
        _DICOM_WEB, "QIDO-RS: search series of the visible studies (PS3.18 10.6)", "gateway"),
    ("GET", "/dicom-web/instances"): Operation(
        _DICOM_WEB, "QIDO-RS: search instances of the visible studies (PS3.18 10.6)",
        "gateway"),
    ("GET", "/dicom-web/studies/{rest}"): Operation(_DICOM_WEB, _STUDY_RESOURCE, "gateway"),
    ("GET", "/dicom-web/{archive}/studies"): Operation(
        _DICOM_WEB, "QIDO-RS studies in one named archive (PS3.18 10.6)", "gateway"),
    ("GET", "/dicom-web/{archive}/series"): Operation(
        _DICOM_WEB, "QIDO-RS series in one named archive (PS3.18 10.6)", "gateway"),
    ("GET", "/dicom-web/{archive}/instances"): Operation(
        _DICOM_WEB, "QIDO-RS instances in one named archive (PS3.18 10.6)", "gateway"),
    ("GET", "/dicom-web/{archive}/studies/{rest}"): Operation(
        _DICOM_WEB, _STUDY_RESOURCE + " in one named archive", "gateway"),
    ("GET", "/IHEInvokeImageDisplay"): Operation(
        "ihe-iid", "IHE Invoke Image Display (RAD-106): 303 to the viewer or the history",
        "iid"),
    ("GET", "/smart/launch"): Operation(
        "smart-app", "SMART App Launch: EHR launch (iss, launch) or standalone", "public"),
    ("GET", "/smart/callback"): Operation(
        "smart-app", "SMART App Launch redirect: code exchange, session cookie", "public"),
    ("POST", "/app/logout"): Operation(
        "smart-app", "Sign out: revoke the EHR tokens and end the session", "session"),
    ("GET", "/app"): Operation("smart-app", "The app's start: to the history page", "session"),
    ("GET", "/app/history"): Operation(
        "smart-app", "The patient's imaging history (HTML), with IID filters", "session"),
    ("GET", "/app/viewer"): Operation(
        "smart-app", "Open studies in OHIF with a fresh viewer token", "session"),
    ("GET", "/app/study/{fhir_id}"): Operation(
        "smart-app", "Open an ImagingStudy by FHIR id in OHIF", "session"),
    ("GET", "/app/report/{fhir_id}"): Operation(
        "smart-app", "One DiagnosticReport of the patient (HTML): status, impression, text",
        "session"),
    ("GET", "/app/report/{fhir_id}/form/{index}"): Operation(
        "smart-app", "One presented form of a report (the PDF) as the EHR holds it",
        "session"),
    ("GET", "/dicom-web/workitems"): Operation(
        "ups-rs", "Search Workitems: the worklist's orders as UPS (PS3.18 11.9)", "ups"),
    ("GET", "/dicom-web/workitems/{uid}"): Operation(
        "ups-rs", "Retrieve Workitem (PS3.18 11.5)", "ups"),
    ("PUT", "/dicom-web/workitems/{uid}/state"): Operation(
        "ups-rs", "Change Workitem State: IN PROGRESS, COMPLETED, CANCELED (PS3.18 11.7)",
        "ups"),
    ("POST", "/dicom-web/workitems/{uid}"): Operation(
        "ups-rs", "Update Workitem of an IN PROGRESS workitem (PS3.18 11.6)", "ups"),
    ("POST", "/worklist/notify"): Operation(
        "worklist", "The EHR's rest-hook Subscription: an order changed, poll now", "orders"),
    ("PUT", "/worklist/notify/{resource_type}/{resource_id}"): Operation(
        "worklist", "The EHR's rest-hook Subscription with payload: poll now (the payload "
        "is not read)", "orders"),
    ("GET", "/status"): Operation(
        "admin", "Sync status: counts, queue lanes, lag, last poll, real-time sources",
        "admin"),
    ("GET", "/studies/{study_uid}"): Operation(
        "admin", "One study's sync state, history and mapping warnings", "admin"),
    ("GET", "/metrics"): Operation("admin", "Prometheus metrics", "admin"),
}


_DESCRIPTION = ("The HTTP APIs of imaging-fhir-bridge: the patient-scoped DICOMweb gateway, "
                "the STOW-RS proxy, IHE Invoke Image Display, signed notifications, the "
                "SMART app and the admin API. A Postman collection exercising them is in "
                "docker/postman.")


def document(app: FastAPI, *, admin_open: bool = False) -> None:
    """Serve the completed document at ``/openapi.json`` (FastAPI caches it once built).
    ``admin_open``: ``api.admin_auth`` is ``none``, the admin API takes no credentials."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, routes=app.routes,
                              description=_DESCRIPTION)
            _complete(doc, admin_open=admin_open)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(doc: dict[str, Any], *, admin_open: bool) -> None:
    doc.setdefault("components", {}).setdefault("securitySchemes", {}).update(
        SECURITY_SCHEMES)
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            entry = OPERATIONS.get((method.upper(), path))
            if entry is None:  # the coverage test names it
                continue
            op["summary"] = entry.summary
            op["tags"] = [entry.tag]
            kind = "public" if admin_open and entry.security == "admin" else entry.security
            op["security"] = _SECURITY[kind]
            responses = op.setdefault("responses", {})
            for status, text in _ERRORS[kind].items():
                responses.setdefault(status, {"description": text})
