"""Orthanc's REST API behind an archive: the few calls the change sources need.

Orthanc's REST root is next to its DICOMweb root (``.../dicom-web`` by convention); its
resources are named by Orthanc's own ids (SHA-1 based, not DICOM UIDs), and
``/studies/{id}`` or ``/series/{id}/study`` give a resource's StudyInstanceUID.
"""

from __future__ import annotations

from typing import Any

import httpx

from bridge.archive.client import DicomwebClient
from bridge.auth.outbound import build_auth
from bridge.errors import ArchiveRejected, ArchiveUnavailable
from bridge.httpclient import HttpClient

#: Orthanc resource levels, and the REST collection of each
LEVELS = {"Study": "studies", "Series": "series", "Instance": "instances"}


def orthanc_root(dicomweb_url: str) -> str:
    """Orthanc's REST root from its DICOMweb root (``.../dicom-web`` by convention)."""
    return dicomweb_url.rstrip("/").removesuffix("/dicom-web")


class OrthancApi:
    """The few Orthanc REST calls the change source needs, with the archive's credentials."""

    def __init__(self, archive: DicomwebClient, *, url: str | None = None) -> None:
        self.archive = archive.name
        self.url = (url or orthanc_root(archive.base_url)).rstrip("/")
        self._client = HttpClient(
            base_url=self.url + "/", auth=build_auth(archive.settings.auth,
                                                     timeout=archive.settings.timeout),
            timeout=archive.settings.timeout,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            resp = await self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise ArchiveUnavailable(f"Orthanc {self.url} unreachable: {type(exc).__name__}"
                                     ) from exc
        if resp.status_code == 404:
            return None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise ArchiveUnavailable(f"Orthanc answered {resp.status_code} for {path}")
        if resp.status_code >= 400:
            raise ArchiveRejected(f"Orthanc refused {path}: HTTP {resp.status_code}",
                                  status_code=resp.status_code)
        return resp.json()

    async def study_uid(self, level: str, orthanc_id: str) -> str | None:
        """The StudyInstanceUID of a study, series or instance; ``None`` if gone."""
        plural = LEVELS.get(level)
        if plural is None:
            return None
        path = f"studies/{orthanc_id}" if plural == "studies" else f"{plural}/{orthanc_id}/study"
        body = await self._get(path)
        if not isinstance(body, dict):
            return None
        uid = (body.get("MainDicomTags") or {}).get("StudyInstanceUID")
        return str(uid) if uid else None

    async def changes(self, since: int, limit: int) -> tuple[list[dict[str, Any]], int, bool]:
        body = await self._get("changes", {"since": since, "limit": limit})
        if not isinstance(body, dict):
            raise ArchiveRejected("Orthanc /changes returned no object")
        return list(body.get("Changes") or []), int(body.get("Last", since)), \
            bool(body.get("Done", True))

    async def last_seq(self) -> int:
        body = await self._get("changes", {"last": ""})
        return int((body or {}).get("Last", 0))
