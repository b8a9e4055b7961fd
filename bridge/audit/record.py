"""The audit record: one access decision (who, which patient, which studies, what, outcome).

A record is what the gateway, IHE IID and the SMART app decide for one request; the FHIR
AuditEvent (:mod:`bridge.audit.fhir`) and the log line (:mod:`bridge.audit.trail`) are two
renderings of it.  It holds the patient (a FHIR ``Patient/id`` reference, or the
``system|value`` identifier a viewer token may carry) for the AuditEvent only: the log line
leaves it out (HOUSE_STYLE: no patient identifiers in logs).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class Action(StrEnum):
    """What was asked for."""

    QUERY = "query"  # QIDO-RS search (PS3.18 10.6)
    READ = "read"  # WADO-RS retrieve: study, series, instance, metadata, frames, rendered
    INVOKE = "invoke-image-display"  # IHE IID RAD-106
    LAUNCH = "launch"  # SMART App Launch: the callback that opens an app session
    HISTORY = "history"  # the app's imaging history page (an ImagingStudy search)
    VIEWER = "viewer-open"  # the app hands the viewer a token for studies


class Outcome(StrEnum):
    """The decision: permitted, refused (the caller may not), failed (we could not answer)."""

    PERMITTED = "permitted"
    REFUSED = "refused"
    FAILED = "failed"


def session_ref(session_key: str) -> str:
    """A SMART app session's reference in the audit trail, from its key (a viewer token's
    ``sid``, the SHA-256 of the session cookie): the gateway's records of a viewer token and
    the app's records of the session that minted it (launch, with the ``fhirUser``) share it,
    which tells who a viewer token's reads were for.  One-way: it names the session without
    being its key, cookie or a token."""
    return hashlib.sha256(b"imaging-bridge audit session:" + session_key.encode()
                          ).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked: the token kind, the OAuth client, the user (SMART ``fhirUser``), from where,
    and the SMART app session behind it (:func:`session_ref`), when there is one."""

    kind: str  # viewer | smart | system | session | anonymous
    client_id: str | None = None
    user: str | None = None  # fhirUser, e.g. Practitioner/12 (AuditEvent only, never logged)
    address: str | None = None  # the client's network address
    session: str | None = None  # session_ref(...) of the SMART app session


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One access decision.  ``reason`` is a short code (the error kind, e.g. ``forbidden``)
    and ``detail`` the message answered; neither carries a patient's name or identifier."""

    source: str  # gateway | iid | smart-app
    action: Action
    outcome: Outcome
    actor: Actor
    status: int  # the HTTP status answered
    patient: str | None = None
    studies: tuple[str, ...] = ()
    archive: str | None = None
    reason: str | None = None
    detail: str | None = None
    #: the request path and query of a search (BALP Query: entity query), None for reads
    query: str | None = None
    recorded: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def key(self) -> tuple[object, ...]:
        """Records with equal keys are the same decision (aggregated within a window)."""
        return (self.source, self.action, self.outcome, self.reason, self.actor.kind,
                self.actor.client_id, self.actor.user, self.actor.address, self.patient,
                self.studies, self.archive, self.query)
