"""The HTTP face of the service: admin API, metrics; later the gateway and SMART app."""

from __future__ import annotations

from bridge.api.app import create_app

__all__ = ["create_app"]
