"""The Imaging Document Source's two writes (I/O): the manifest into the archive by
STOW-RS, the ITI-65 bundle to the document recipient.

Errors are translated here into the product's tree, like the archive and FHIR clients:
the archive unreachable, 5xx or 429 -> :class:`~bridge.errors.ArchiveUnavailable`; a
refused STOW (4xx, or a Failed SOP Sequence in its response) ->
:class:`~bridge.errors.ArchiveRejected`; the FHIR side is the FhirClient's
(:class:`~bridge.errors.FhirBusy` / :class:`~bridge.errors.Conflict` /
:class:`~bridge.errors.FhirRejected` with the OperationOutcome).  Both writes are safe to
repeat: the same manifest has the same SOP Instance UID and the bundle is conditional
(see bridge.sharing.mhd), so a publication queue may simply retry a failed one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from bridge.auth.outbound import build_auth
from bridge.config import ArchiveSettings
from bridge.errors import ArchiveRejected, ArchiveUnavailable, FhirBusy
from bridge.fhir.client import FhirClient
from bridge.httpclient import HttpClient
from bridge.jsonbytes import loads

JSON = dict[str, Any]

_FAILED_SOP_SEQUENCE = "00081198"  # PS3.18 10.5.3.3, Table 10.5.3-1 (store instances response)
_REFERENCED_SOP_SEQUENCE = "00081199"
_FAILURE_REASON = "00081197"


class ManifestStore:
    """STOW-RS (PS3.18 10.5) of manifests into one archive.  Use as an async context
    manager; ``transport`` is for tests (httpx.MockTransport)."""

    def __init__(
        self, settings: ArchiveSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.name = settings.name
        self._client = HttpClient(
            base_url=settings.base_url + "/",
            auth=build_auth(settings.auth, timeout=settings.timeout, base_url=settings.base_url),
            timeout=settings.timeout,
            transport=transport,
        )

    async def __aenter__(self) -> ManifestStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    async def store(self, part10: bytes) -> None:
        """Store one Part 10 instance; returns when the archive confirmed it (PS3.18
        10.5.3: 200 stored; an instance already stored with this SOP Instance UID counts
        as stored, so a retry is harmless)."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
                + part10 + f"\r\n--{boundary}--\r\n".encode())
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        try:
            resp = await self._client.post(
                "studies", content=body,
                headers={"Content-Type": content_type, "Accept": "application/dicom+json"})
        except httpx.HTTPError as exc:
            raise ArchiveUnavailable(
                f"archive {self.name!r} unreachable for STOW-RS: {type(exc).__name__}"
            ) from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ArchiveUnavailable(f"archive {self.name!r} answered {resp.status_code} "
                                     "to STOW-RS")
        failed = _failures(resp.content)
        if resp.status_code >= 400 or failed:
            reasons = ", ".join(failed) or "no reason given"
            raise ArchiveRejected(
                f"archive {self.name!r} refused the manifest (STOW-RS HTTP "
                f"{resp.status_code}, failure reasons: {reasons})", status_code=resp.status_code)


def _failures(content: bytes) -> list[str]:
    """Failure Reasons (0008,1197) of a STOW-RS response's Failed SOP Sequence."""
    try:
        body = loads(content) if content else None
    except ValueError:
        return []
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    reasons = []
    for item in items:
        failed = (item.get(_FAILED_SOP_SEQUENCE) or {}).get("Value") or []
        for sop in failed:
            reason = ((sop.get(_FAILURE_REASON) or {}).get("Value") or ["?"])[0]
            reasons.append(str(reason))
    return reasons


@dataclass(frozen=True, slots=True)
class ProvideOutcome:
    """What the document recipient did with an ITI-65 bundle."""

    #: ``DocumentReference/<id>/_history/<version>`` as the server answered
    document_reference: str
    #: False when the conditional create found the document already registered (a retry)
    created: bool


async def provide(fhir: FhirClient, bundle: JSON) -> ProvideOutcome:
    """POST the ITI-65 ``bundle`` (a transaction, R4 3.1.0.11) to the document recipient.

    Returns where the DocumentReference is and whether this call created it.  Raises the
    FhirClient's errors; :class:`~bridge.errors.FhirBusy` when the answer lacks the
    DocumentReference's entry (a transaction-response has one entry per request entry).
    """
    resp = await fhir.request("POST", "", json=bundle, interaction="mhd-provide")
    answer = loads(resp.content)
    entries = answer.get("entry") or []
    if len(entries) != len(bundle["entry"]):
        raise FhirBusy(f"ITI-65 response has {len(entries)} entries for "
                       f"{len(bundle['entry'])} sent")
    for sent, got in zip(bundle["entry"], entries, strict=True):
        resource, request = sent["resource"], sent["request"]
        if resource["resourceType"] == "DocumentReference" and request["method"] == "POST":
            response = got.get("response") or {}
            location = str(response.get("location") or "")
            if not location:
                break
            return ProvideOutcome(document_reference=location,
                                  created=str(response.get("status", "")).startswith("201"))
    raise FhirBusy("ITI-65 response has no location for the DocumentReference")
