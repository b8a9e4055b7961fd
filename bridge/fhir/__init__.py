"""The FHIR side: an async R4 REST client with typed errors."""

from __future__ import annotations

from bridge.fhir.client import EntryResult, FhirClient

__all__ = ["EntryResult", "FhirClient"]
