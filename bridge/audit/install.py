"""Building the audit trail from the settings and attaching it to the app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI

from bridge.audit.sink import FhirAuditSink
from bridge.audit.trail import AuditTrail
from bridge.config import AuditSettings, FhirSettings, SmartSettings
from bridge.fhir.client import FhirClient

OBSERVER = "imaging-fhir-bridge"


def audit_fhir_settings(audit: AuditSettings, fhir: FhirSettings) -> FhirSettings:
    """The audit server: ``audit.base_url`` (with ``audit.auth``, else none), else the
    EHR's FHIR server with ``fhir.auth`` (unless ``audit.auth`` says otherwise)."""
    if audit.base_url is None:
        return FhirSettings(base_url=fhir.base_url, auth=audit.auth or fhir.auth,
                            timeout=audit.timeout, concurrency=1)
    return FhirSettings.model_validate({"base_url": audit.base_url, "timeout": audit.timeout,
                                        "concurrency": 1,
                                        **({"auth": audit.auth} if audit.auth else {})})


def trail_of(audit: AuditSettings, *, fhir: FhirSettings, server_address: str | None = None
             ) -> AuditTrail:
    """The trail of ``audit``; AuditEvents (to ``audit.base_url``, else the EHR's FHIR
    server ``fhir``) only when ``audit.enabled``."""
    sink = None
    if audit.enabled:
        client = FhirClient(audit_fhir_settings(audit, fhir))
        sink = FhirAuditSink(client, observer=OBSERVER, server_address=server_address)
    return AuditTrail(sink=sink, queue_size=audit.queue_size, batch_size=audit.batch_size,
                      aggregate_seconds=audit.aggregate_seconds,
                      close_timeout=audit.timeout)


def install(app: FastAPI, trail: AuditTrail, *, smart: SmartSettings) -> None:
    """Attach ``trail`` (``app.state.audit``), write what is left at shut-down, and observe
    the SMART app's launches and page decisions when it is enabled."""
    from bridge.audit.smart import SmartAccessObserver

    app.state.audit = trail

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await trail.aclose()

    app.include_router(APIRouter(lifespan=lifespan))
    if smart.enabled:
        app.add_middleware(SmartAccessObserver, trail=trail, client_id=smart.client_id)
