"""Fixtures of the worklist's integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest


@pytest.fixture
def fhir(hapi: Any) -> Iterator[httpx.Client]:
    """A plain HTTP client of the shared HAPI's FHIR base: the tests' own view of the
    EHR (creating orders, reading what the bridge wrote)."""
    with httpx.Client(base_url=hapi.fhir_url, timeout=30) as client:
        yield client
