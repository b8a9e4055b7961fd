"""Sandbox EHR: a SMART App Launch 2.2 / Backend Services authorization server built with
authlib, in front of a real FHIR server (HAPI), for tests and the demo.  Not part of the
product (``bridge/``).  See README.md."""

from __future__ import annotations

from .models import SandboxClient, SandboxUser
from .server import SandboxEhr

__all__ = ["SandboxClient", "SandboxEhr", "SandboxUser"]
