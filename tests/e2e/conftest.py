"""The e2e tests reuse the integration fixtures (real Orthanc, HAPI FHIR, PostgreSQL; with
``BRIDGE_TEST_STACK`` the running ones)."""

from __future__ import annotations

from tests.integration.conftest import hapi, ns, orthanc, postgres, stack_state

__all__ = ["hapi", "ns", "orthanc", "postgres", "stack_state"]
