"""Real-time event sources: the STOW-RS proxy, signed notifications, Orthanc's changes feed.

Each source only marks studies due in the state store (through :class:`Coalescer`) and wakes
the workers; the sync engine does the rest (HOUSE_STYLE "Data flow").
"""

from __future__ import annotations

from bridge.realtime.coalesce import Coalescer
from bridge.realtime.context import RealtimeContext
from bridge.realtime.signing import SignatureError, sign, verify_signature

__all__ = ["Coalescer", "RealtimeContext", "SignatureError", "sign", "verify_signature"]
