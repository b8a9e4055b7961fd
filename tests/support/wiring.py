"""One part of the bridge built from a whole :class:`~bridge.config.Settings`, through the
composition root (:mod:`bridge.assembly`), for tests and tools that need that part alone.

Below the root no function takes the whole settings (``tests/unit/test_architecture.py``
keeps it so); these conveniences are the test side's, and each one only asks the root.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter

from bridge import assembly
from bridge.audit import AuditTrail, trail_of
from bridge.config import Settings
from bridge.fhir.client import FhirClient
from bridge.gateway.service import Gateway, SessionAlive, SessionResolver
from bridge.sync.service import SyncContext
from smart_app import SmartApp, smart_routes
from smart_app.viewer import DataSource


def sync_context(settings: Settings, *, worker_id: str | None = None
                 ) -> contextlib.AbstractAsyncContextManager[SyncContext]:
    """The sync engine as the root wires it (store, clients, mapping, runner, poller)."""
    return assembly.sync_only(settings, worker_id=worker_id)


def gateway_of(settings: Settings, *, fhir: FhirClient | None = None,
               audit: AuditTrail | None = None, session_resolver: SessionResolver | None = None,
               session_alive: SessionAlive | None = None) -> Gateway:
    """The DICOMweb gateway alone (whether or not ``gateway.enabled``)."""
    return assembly.gateway_of(settings, urls=assembly.public_urls(settings), fhir=fhir,
                               audit=audit, session_resolver=session_resolver,
                               session_alive=session_alive)


def archive_base(settings: Settings, archive: str) -> str:
    """The public DICOMweb base of one archive behind the gateway."""
    return assembly.public_urls(settings).archive(archive)


def iid_endpoint(settings: Settings) -> dict[str, Any] | None:
    """The ``ihe-iid`` Endpoint every ImagingStudy references; None without the gateway
    or with IID off."""
    policy = assembly.endpoints(settings, urls=assembly.public_urls(settings))
    return policy.iid_endpoint() if policy is not None else None


def gateway_endpoint_hooks(settings: Settings) -> dict[str, Any]:
    """``SyncRunner`` keyword arguments of the deployment's Endpoint policy."""
    return assembly.endpoint_options(settings)


def build_trail(settings: Settings, *, server_address: str | None = None) -> AuditTrail:
    """The audit trail of ``settings.audit`` (AuditEvents to the EHR's FHIR server)."""
    return trail_of(settings.audit, fhir=settings.fhir, server_address=server_address)


def data_sources(settings: Settings) -> list[DataSource]:
    """OHIF's data sources (one per archive behind the gateway)."""
    return assembly.data_sources(settings, urls=assembly.public_urls(settings))


def smart_app_of(settings: Settings) -> SmartApp:
    """The SMART app, whether or not ``smart.enabled``."""
    return assembly.smart_app(settings, urls=assembly.public_urls(settings))


def smart_router(settings: Settings) -> APIRouter:
    """The SMART app's routes, served alone (no gateway hooks)."""
    return smart_routes(smart_app_of(settings), sources=data_sources(settings),
                        viewer_session=settings.gateway.enabled)
