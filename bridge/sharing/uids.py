"""The manifest's UIDs, derived from what it says, so a rebuilt manifest is the same one.

A UUID-derived UID (PS3.5 B.2: ``2.25.`` + the UUID as one integer) of a name-based UUID
(RFC 9562 5.5, version 5) over the manifest's content.  A publication retried after a
crash rebuilds the same SOP Instance UID, hence the same MHD masterIdentifier, and the
registry's conditional create finds the first one instead of registering a duplicate; a
study that gained or lost an instance gets a new UID, i.e. a replacement manifest.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable

#: namespace of every UID this room derives (a fixed random UUID; changing it changes
#: every manifest UID, so it never changes)
_NAMESPACE = uuid.UUID("4f0f3c1e-2d55-4c0b-9a57-1b3f5b7b9d21")


def derived_uid(*parts: str) -> str:
    """``2.25.<int>`` of the version-5 UUID of ``parts`` (at most 44 characters)."""
    return f"2.25.{uuid.uuid5(_NAMESPACE, chr(31).join(parts)).int}"


def content_digest(lines: Iterable[str]) -> str:
    """SHA-256 hex of the lines, in order (the caller sorts them)."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("ascii", "backslashreplace") + b"\n")
    return digest.hexdigest()


def manifest_series_uid(study_uid: str) -> str:
    """The Series Instance UID of the study's manifests: one series for all of them."""
    return derived_uid("kos-series", study_uid)
