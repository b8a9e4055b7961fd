"""STOW-RS of a retrieved study into the archive (PS3.18 10.5), in chunks of instances,
through the bridge's STOW client (:meth:`~bridge.realtime.stow_forward.StowForwarder.post`:
the archive's credentials and timeouts; the body is ours, so nothing is inspected).

Each chunk is one ``multipart/related; type="application/dicom"`` request to
``studies/{study}``.  The response is read per instance (PS3.18 10.5.3, Table 10.5.3-1):
Referenced SOP Sequence (0008,1199) items were stored; Failed SOP Sequence (0008,1198) items
were refused, each with its Failure Reason (0008,1197).  A 409 or 400 naming instances is a
per-instance refusal, not a failed study; a 4xx naming none is :class:`ArchiveRejected`,
a 5xx or 429 or no answer is :class:`ArchiveUnavailable`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bridge.dicom_uid import uid_segment
from bridge.errors import ArchiveRejected, ArchiveUnavailable
from bridge.jsonbytes import loads
from bridge.migration.retrieve import ReceivedInstance
from bridge.realtime.stow_forward import StowForwarder
from bridge.retry_after import retry_after

__all__ = ["InstanceRefusal", "StowOutcome", "stow_study"]

# PS3.18 Table 10.5.3-1 (DICOM JSON keys, PS3.18 F.2)
FAILURE_REASON = "00081197"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_INSTANCE_UID = "00081155"

#: instances per STOW-RS request
DEFAULT_CHUNK = 50


@dataclass(frozen=True, slots=True)
class InstanceRefusal:
    """The archive refused one instance: its Failure Reason (0008,1197, PS3.18 Table
    10.5.3-2, e.g. 0xA700 out of resources, 0xC000 cannot understand) and the HTTP status
    of the response that said so."""

    sop_instance_uid: str
    failure_reason: int | None
    http_status: int


@dataclass(slots=True)
class StowOutcome:
    """Per instance, what the archive answered to a study's STOW-RS requests."""

    study_uid: str
    stored: list[str] = field(default_factory=list)
    refused: list[InstanceRefusal] = field(default_factory=list)
    #: sent, but named in neither sequence of the response (verification will tell)
    unconfirmed: list[str] = field(default_factory=list)
    requests: int = 0


def _multipart(parts: Sequence[bytes]) -> tuple[bytes, str]:
    """A multipart/related body of Part-10 files (PS3.18 8.6.1.2, RFC 2387)."""
    boundary = uuid.uuid4().hex
    pieces = []
    for part in parts:
        pieces += [f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), part,
                   b"\r\n"]
    pieces.append(f"--{boundary}--\r\n".encode())
    return (b"".join(pieces),
            f'multipart/related; type="application/dicom"; boundary={boundary}')


def _items(body: Any, tag: str) -> list[dict[str, Any]]:
    value = (body.get(tag) or {}).get("Value") if isinstance(body, dict) else None
    return [item for item in value or [] if isinstance(item, dict)]


def _first(item: dict[str, Any], tag: str) -> Any:
    values = (item.get(tag) or {}).get("Value") or []
    return values[0] if values else None


def read_response(status: int, content: bytes) -> tuple[list[str], list[InstanceRefusal]]:
    """The SOP Instance UIDs a STOW-RS response stored, and the instances it refused."""
    try:
        body = loads(content) if content else None
    except ValueError:
        body = None
    if isinstance(body, list):
        body = body[0] if body else None
    stored = [str(uid) for item in _items(body, REFERENCED_SOP_SEQUENCE)
              if (uid := _first(item, REFERENCED_SOP_INSTANCE_UID))]
    refused = []
    for item in _items(body, FAILED_SOP_SEQUENCE):
        uid = _first(item, REFERENCED_SOP_INSTANCE_UID)
        if uid:
            reason = _first(item, FAILURE_REASON)
            refused.append(InstanceRefusal(str(uid), int(reason) if reason is not None
                                           else None, status))
    return stored, refused


async def stow_study(forwarder: StowForwarder, study_uid: str,
                     instances: Sequence[ReceivedInstance], *,
                     chunk: int = DEFAULT_CHUNK) -> StowOutcome:
    """STOW-RS ``instances`` of ``study_uid`` to the forwarder's archive, ``chunk`` per
    request; raises only for a request the archive refused or did not answer as a whole."""
    outcome = StowOutcome(study_uid)
    path = f"studies/{uid_segment(study_uid)}"
    name = forwarder.archive.name
    for start in range(0, len(instances), chunk):
        part = instances[start:start + chunk]
        body, content_type = _multipart([i.part10() for i in part])
        try:
            resp = await forwarder.post(path, body, content_type)
        except httpx.HTTPError as exc:
            raise ArchiveUnavailable(f"archive {name!r} did not answer a STOW-RS of study "
                                     f"{study_uid}: {type(exc).__name__}") from exc
        outcome.requests += 1
        code = resp.status_code
        if code == 429 or code >= 500:
            raise ArchiveUnavailable(f"archive {name!r} answered {code} to a STOW-RS of "
                                     f"study {study_uid}", retry_after=retry_after(resp.headers))
        stored, refused = read_response(code, resp.content)
        if code >= 300 and not refused:
            raise ArchiveRejected(f"archive {name!r} refused a STOW-RS of study {study_uid} "
                                  f"naming no instance: HTTP {code}", status_code=code)
        outcome.stored += stored
        outcome.refused += refused
        named = set(stored) | {r.sop_instance_uid for r in refused}
        outcome.unconfirmed += [i.sop_instance_uid for i in part
                                if i.sop_instance_uid not in named]
    return outcome
