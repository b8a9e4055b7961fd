"""Canonical JSON of a resource: the bytes its content hash is computed over.

Sorted keys, no whitespace, UTF-8 without escaping, no NaN: the same resource always gives
the same bytes, so a changed hash means a changed resource.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(resource: Any) -> bytes:
    """Sorted-key compact UTF-8 JSON of ``resource`` (byte-identical for equal input)."""
    return json.dumps(
        resource, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_hash(resource: Any) -> str:
    """SHA-256 hex digest of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(resource)).hexdigest()
