"""Audit trail of image access (issue 20 item 9): who saw what, and who was refused.

Every access decision of the DICOMweb gateway (QIDO-RS, WADO-RS), IHE IID and the SMART
app (launch, history page, viewer open) becomes one :class:`AuditRecord`, logged at once
(no patient, user identity or token in the log line) and written in the background as a
FHIR R4 AuditEvent after IHE BALP to the audit server (``audit.*`` settings; default the
EHR's FHIR server).

Public API::

    trail_of(settings.audit, fhir=settings.fhir, server_address=url)   # the trail
    install(app, trail, smart=settings.smart)   # app.state.audit, closed at shut-down
    trail.record(AuditRecord(...))   # never waits
    audit_event(record, observer=)   # the AuditEvent of a record
"""

from __future__ import annotations

from bridge.audit.fhir import EVENT_CODES, audit_event
from bridge.audit.install import install, trail_of
from bridge.audit.record import Action, Actor, AuditRecord, Outcome, session_ref
from bridge.audit.sink import AuditSink, FhirAuditSink
from bridge.audit.trail import AuditTrail

__all__ = [
    "EVENT_CODES",
    "Action",
    "Actor",
    "AuditRecord",
    "AuditSink",
    "AuditTrail",
    "FhirAuditSink",
    "Outcome",
    "audit_event",
    "install",
    "session_ref",
    "trail_of",
]
