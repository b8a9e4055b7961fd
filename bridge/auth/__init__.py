"""Outbound authentication for the archive and the FHIR server."""

from __future__ import annotations

from bridge.auth.outbound import build_auth

__all__ = ["build_auth"]
