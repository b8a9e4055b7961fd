"""Why the SMART app showed an error page: ``bridge_smart_app_errors_total{reason,status}``.

``bridge_smart_launches_total`` (bridge.audit.smart) counts launches by outcome and HTTP
status; this counts each error page by what went wrong, from the page's title, which the
app keeps to a fixed set of phrases.  A title outside the table counts as ``other``: labels
never take free text (a test checks the table against every title in smart_app).
"""

from __future__ import annotations

from prometheus_client import Counter

#: error page title -> reason label
REASONS: dict[str, str] = {
    "Launch refused": "launch-refused",  # iss not on smart.iss_allowlist, or missing
    "EHR not reachable": "ehr-not-reachable",
    "EHR discovery failed": "ehr-discovery-failed",  # .well-known/smart-configuration
    "EHR not supported": "ehr-not-supported",  # no PKCE S256, no EHR launch
    "Sign-in failed": "sign-in-failed",  # state, code, token or id_token refused
    "Access not granted": "access-not-granted",  # the user denied consent at the EHR
    "Session expired": "session-expired",  # the EHR did not renew the access
    "Not signed in": "not-signed-in",
    "Cannot open the viewer": "viewer-request-invalid",
    "Cannot open the study": "study-not-openable",
    "Cannot open the report": "report-not-openable",  # issue 16: not a FHIR id, not the patient's
    "Cannot open the document": "report-not-openable",  # no such presented form
    "The EHR did not answer": "ehr-fhir-unavailable",  # a FHIR read of the history failed
}

SMART_APP_ERRORS = Counter(
    "bridge_smart_app_errors_total",
    "SMART app error pages by reason (launch-refused, ehr-not-reachable, "
    "ehr-discovery-failed, ehr-not-supported, sign-in-failed, access-not-granted, "
    "session-expired, not-signed-in, viewer-request-invalid, study-not-openable, "
    "report-not-openable, ehr-fhir-unavailable, other) and HTTP status",
    ["reason", "status"],
)


def count_error_page(title: str, status: int) -> None:
    """Count one error page of the SMART app (called where the app renders it)."""
    SMART_APP_ERRORS.labels(reason=REASONS.get(title, "other"), status=str(status)).inc()
