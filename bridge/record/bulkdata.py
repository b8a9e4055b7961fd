"""Reading what the record needs from the archive beyond the sync's client: a series'
WADO-RS metadata (PS3.18 10.4.1.1.2; only the report / document series of a study are read,
not its images' metadata) and an encapsulated document's bytes by its BulkDataURI.

WADO-RS metadata replaces large values by a ``BulkDataURI`` (PS3.18 F.2.6); retrieving it
(PS3.18 10.4.1.1.5, "Retrieve Bulkdata") answers ``multipart/related;
type="application/octet-stream"`` with one part, or the bytes themselves when the archive
offers ``application/octet-stream``.  The URI is only followed inside the archive's own
base URL: the archive's credentials go nowhere else.

Errors are translated here: no answer, 5xx, 429 -> :class:`ArchiveUnavailable`; other
answers that give no bytes -> :class:`DocumentUnreadable` (the report is written without
its document, with a warning).
"""

from __future__ import annotations

from email.message import Message
from typing import Any
from urllib.parse import urljoin

import httpx

from bridge.auth.outbound import build_auth
from bridge.config import ArchiveSettings
from bridge.dicom_uid import SERIES_UID_TAG, uid_segment
from bridge.errors import ArchiveRejected, ArchiveUnavailable, Permanent, StudyGone
from bridge.httpclient import HttpClient
from bridge.jsonbytes import loads
from bridge.retry_after import retry_after

__all__ = ["BulkDataReader", "DocumentUnreadable", "single_part"]

DicomJson = dict[str, Any]

_ACCEPT = 'multipart/related; type="application/octet-stream", application/octet-stream'


class DocumentUnreadable(Permanent):
    """The BulkDataURI gave no document: outside the archive, refused, or not a part."""

    kind = "document-unreadable"


def single_part(content_type: str | None, body: bytes) -> bytes:
    """The first part's bytes of a ``multipart/related`` body (RFC 2046 5.1.1: parts
    start after ``--boundary`` and their headers' blank line, end before ``CRLF--boundary``);
    any other media type is the bytes themselves."""
    msg = Message()
    msg["content-type"] = content_type or "application/octet-stream"
    if msg.get_content_maintype() != "multipart":
        return body
    boundary = msg.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise DocumentUnreadable("multipart bulk data without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    headers_end = body.find(b"\r\n\r\n", start) if start >= 0 else -1
    if headers_end < 0:
        raise DocumentUnreadable("multipart bulk data without a complete part")
    begin = headers_end + 4
    end = body.find(b"\r\n" + delimiter, begin)
    if end < 0:
        raise DocumentUnreadable("multipart bulk data without a closing delimiter")
    return body[begin:end]


class BulkDataReader:
    """Reads BulkDataURIs of one archive with its credentials.  Close with :meth:`aclose`."""

    def __init__(self, settings: ArchiveSettings, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = settings.name
        self._base = settings.base_url.rstrip("/") + "/"
        self._client = HttpClient(
            auth=build_auth(settings.auth, timeout=settings.timeout, base_url=settings.base_url),
            timeout=settings.timeout, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    def resolve(self, uri: str) -> str:
        """The absolute URL of ``uri`` (relative ones against the archive's base).

        :raises DocumentUnreadable: for a URL outside the archive's base.
        """
        url = urljoin(self._base, uri)
        if not url.startswith(self._base):
            raise DocumentUnreadable(f"BulkDataURI outside archive {self.name!r}; not followed")
        return url

    async def series_metadata(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """WADO-RS metadata of one series (PS3.18 10.4.1.1.2): its instances as DICOM JSON,
        SR content sequences included.

        :raises StudyGone: 404 (the series left the archive since the sync read it).
        """
        path = (f"studies/{uid_segment(study_uid)}/series/"
                f"{uid_segment(series_uid, tag=SERIES_UID_TAG)}/metadata")
        try:
            resp = await self._client.get(self._base + path,
                                          headers={"Accept": "application/dicom+json"})
        except httpx.HTTPError as exc:
            raise ArchiveUnavailable(f"archive {self.name!r} unreachable for {path}: "
                                     f"{type(exc).__name__}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ArchiveUnavailable(f"archive {self.name!r} answered {resp.status_code} "
                                     f"for {path}", retry_after=retry_after(resp.headers))
        if resp.status_code == 404:
            raise StudyGone(f"series {series_uid} is not in archive {self.name!r}")
        if resp.status_code != 200:
            raise ArchiveRejected(f"archive {self.name!r} refused {path}: HTTP "
                                  f"{resp.status_code}", status_code=resp.status_code)
        try:
            body = loads(resp.content) if resp.content else []
        except ValueError as exc:
            raise ArchiveRejected(f"archive {self.name!r} returned non-JSON for {path}",
                                  status_code=200) from exc
        if not isinstance(body, list):
            raise ArchiveRejected(f"archive {self.name!r} returned a non-array for {path}")
        return [item for item in body if isinstance(item, dict)]

    async def read(self, uri: str) -> bytes:
        """The bytes behind ``uri``."""
        url = self.resolve(uri)
        try:
            resp = await self._client.get(url, headers={"Accept": _ACCEPT})
        except httpx.HTTPError as exc:
            raise ArchiveUnavailable(f"archive {self.name!r} unreachable for bulk data: "
                                     f"{type(exc).__name__}") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ArchiveUnavailable(f"archive {self.name!r} answered {resp.status_code} "
                                     "for bulk data", retry_after=retry_after(resp.headers))
        if resp.status_code != 200:
            raise DocumentUnreadable(f"archive {self.name!r} answered {resp.status_code} "
                                     "for bulk data")
        return single_part(resp.headers.get("content-type"), resp.content)
