"""Deterministic UIDs for the generated and re-identified samples (PS3.5 9, B.2)."""

from __future__ import annotations

import random
import uuid

__all__ = ["uid"]


def uid(rng: random.Random, uid_root: str | None = None) -> str:
    """A fresh UID drawn from ``rng``: UUID-derived ``2.25.<int>`` (PS3.5 B.2) without a
    root, else ``<root>.<digits>`` kept within the 64-character limit (PS3.5 9.1)."""
    bits = rng.getrandbits(128)
    if uid_root is None:
        # set the version/variant bits so the integer really is a (version 4) UUID
        return f"2.25.{uuid.UUID(int=bits, version=4).int}"
    suffix = str(bits)[: 63 - len(uid_root)].lstrip("0") or "1"
    return f"{uid_root}.{suffix}"
