"""The gateway's Endpoint vocabulary, re-exported for the gateway's users.

The addresses are computed once by :class:`bridge.urls.PublicUrls` and the Endpoints by the
sync's policy (:mod:`bridge.sync.endpoints`); the composition root (:mod:`bridge.assembly`)
builds both and hands them to the components (tests build them from a whole settings with
``tests/support/wiring.py``).
"""

from __future__ import annotations

from bridge.sync.endpoints import CONNECTION_TYPES, REQUIRES_ACCESS_TOKEN, URI_SYSTEM
from bridge.urls import IID_PATH

__all__ = ["CONNECTION_TYPES", "IID_PATH", "REQUIRES_ACCESS_TOKEN", "URI_SYSTEM"]
