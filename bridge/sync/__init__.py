"""The sync engine: claim due studies, fetch, map, write to FHIR, record the outcome."""

from __future__ import annotations
