"""Where audit records are written: a FHIR server, as AuditEvents in batch Bundles.

One ``POST [base]`` of a ``batch`` Bundle (FHIR R4 3.1.0.11) per batch of records, each
entry a create of one AuditEvent (``Prefer: return=minimal``).  Errors are translated here:
the sink answers how many records the server confirmed; it never raises for the server's
answer, so the writer keeps going (the records are in the log lines whatever happens).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from bridge.audit.fhir import audit_event
from bridge.audit.record import AuditRecord
from bridge.errors import BridgeError
from bridge.fhir.client import FhirClient

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    """Writes a batch of records; returns how many were confirmed (the rest failed)."""

    async def write(self, records: Sequence[AuditRecord]) -> int: ...

    async def aclose(self) -> None: ...


class FhirAuditSink:
    """AuditEvents to a FHIR R4 server (the EHR's by default)."""

    def __init__(self, client: FhirClient, *, observer: str,
                 server_address: str | None = None) -> None:
        self.client = client
        self.observer = observer
        self.server_address = server_address
        self._failing = False

    async def aclose(self) -> None:
        await self.client.aclose()

    async def write(self, records: Sequence[AuditRecord]) -> int:
        entries = [{"fullUrl": f"urn:uuid:{r.id}",
                    "resource": audit_event(r, observer=self.observer,
                                            server_address=self.server_address),
                    "request": {"method": "POST", "url": "AuditEvent"}} for r in records]
        bundle = {"resourceType": "Bundle", "type": "batch", "entry": entries}
        try:
            resp = await self.client.request("POST", "", json=bundle, interaction="audit",
                                             headers={"Prefer": "return=minimal"})
            answered = resp.json().get("entry") or []
        except (BridgeError, ValueError, AttributeError) as exc:
            self._failed(len(records), type(exc).__name__,
                         getattr(exc, "status_code", None))
            return 0
        statuses = [str((e.get("response") or {}).get("status", "")) for e in answered
                    if isinstance(e, dict)]
        ok = sum(1 for s in statuses if s[:1] == "2")
        if ok < len(records):
            refused = next((s for s in statuses if s[:1] != "2"), "no entry")
            self._failed(len(records) - ok, "entry-refused", refused.split(" ")[0])
        elif self._failing:
            self._failing = False
            log.info("audit sink recovered", extra={"audit_server": self.client.base_url})
        return ok

    def _failed(self, count: int, error_type: str, status: object) -> None:
        self._failing = True
        log.error("audit sink failed: AuditEvents not written (the audit log lines remain)",
                  extra={"audit_server": self.client.base_url, "records": count,
                         "error_type": error_type, "status": status})
