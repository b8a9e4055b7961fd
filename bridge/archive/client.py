"""Async DICOMweb client (QIDO-RS and WADO-RS metadata) for one archive.

Every httpx error is translated here into the bridge's error tree: transport failures,
5xx and 429 become :class:`ArchiveUnavailable` (an outage, honouring Retry-After), other
4xx become :class:`ArchiveRejected`, and a study that is not there is :class:`StudyGone`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from bridge.archive.dicomjson import STUDY_UID, DicomJson, first_str
from bridge.archive.source import STUDY_INCLUDE, StudySearches
from bridge.auth.outbound import build_auth
from bridge.config import ArchiveSettings
from bridge.dicom_uid import SERIES_UID_TAG, STUDY_UID_TAG, uid_segment
from bridge.errors import ArchiveRejected, ArchiveUnavailable, DicomDataError, StudyGone
from bridge.httpclient import HttpClient
from bridge.jsonbytes import loads
from bridge.mapping.tags import PATIENT_ID
from bridge.metrics import QIDO_LATENCY
from bridge.retry_after import retry_after

log = logging.getLogger(__name__)

_DICOM_JSON = "application/dicom+json"

class DicomwebClient(StudySearches):
    """One archive's DICOMweb API over HTTP: a :class:`~bridge.archive.source.DicomwebSource`.
    Use as an async context manager."""

    def __init__(
        self,
        settings: ArchiveSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.page_size = settings.page_size
        self.max_results = settings.max_results
        self.base_url = settings.base_url
        self._client = HttpClient(
            base_url=settings.base_url + "/",
            auth=build_auth(settings.auth, timeout=settings.timeout, base_url=settings.base_url),
            timeout=settings.timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=settings.concurrency * 2),
        )
        # Requests beyond the pool's connections wait here rather than in httpcore's
        # queue, whose every hand-over scans all waiting requests against all connections
        # (a claim of 100 studies asks for 100 metadata at once: most of the client's CPU)
        self._in_flight = asyncio.Semaphore(settings.concurrency * 2)

    async def __aenter__(self) -> DicomwebClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _get_json(
        self, path: str, params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        *, study_uid: str | None = None,
    ) -> list[DicomJson]:
        started = time.perf_counter()
        try:
            async with self._in_flight:
                resp = await self._client.get(
                    path, params=params, headers={"Accept": _DICOM_JSON}  # type: ignore[arg-type]
                )
        except httpx.HTTPError as exc:
            raise ArchiveUnavailable(
                f"archive {self.name!r} unreachable for {path}: {type(exc).__name__}"
            ) from exc
        finally:
            QIDO_LATENCY.labels(archive=self.name).observe(time.perf_counter() - started)
        if resp.status_code == 204:  # QIDO-RS: no matches (PS3.18 8.3.3.2)
            return []
        if resp.status_code == 404 and study_uid is not None:
            raise StudyGone(f"study {study_uid} is not in archive {self.name!r}")
        if resp.status_code == 429 or resp.status_code >= 500:
            raise ArchiveUnavailable(
                f"archive {self.name!r} answered {resp.status_code} for {path}",
                retry_after=retry_after(resp.headers),
            )
        if resp.status_code >= 400:
            raise ArchiveRejected(
                f"archive {self.name!r} refused {path}: HTTP {resp.status_code}",
                status_code=resp.status_code,
            )
        if not resp.content:
            return []
        try:
            body = loads(resp.content)
        except ValueError as exc:
            raise ArchiveRejected(
                f"archive {self.name!r} returned non-JSON for {path}", status_code=resp.status_code
            ) from exc
        if not isinstance(body, list):
            raise ArchiveRejected(f"archive {self.name!r} returned a non-array for {path}")
        return body

    # --- QIDO-RS (PS3.18 10.6) --------------------------------------------------------------

    async def search_studies(
        self,
        filters: Mapping[str, str] | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        includefield: Sequence[str] = STUDY_INCLUDE,
    ) -> list[DicomJson]:
        params: list[tuple[str, Any]] = list((filters or {}).items())
        params += [("includefield", f) for f in includefield]
        if limit is not None:
            params.append(("limit", limit))
        if offset:
            params.append(("offset", offset))
        return await self._get_json("studies", params)

    async def study_series(self, study_uid: str) -> list[DicomJson]:
        try:
            return await self._get_json(f"studies/{uid_segment(study_uid)}/series",
                                        study_uid=study_uid)
        except StudyGone as exc:
            await self.confirm_gone(study_uid, cause=exc)
            raise

    async def confirm_gone(self, study_uid: str, *, cause: StudyGone) -> None:
        """Return only if a QIDO search for the UID finds no row: then the archive's "not
        found" is believed.  Otherwise raise the error that explains the unreadable study.

        A WADO-RS 404 alone is not proof (PS3.18 10.4.3 says only that the resource was
        not found *at that path*): Orthanc keys a study on PatientID + StudyInstanceUID,
        and answers 404 to ``/studies/{uid}/metadata`` when one UID is stored under two
        patients while QIDO still lists both rows.  Deleting the ImagingStudy then would
        lose a live study, so "gone" is claimed only after this check.
        """
        rows = await self.search_studies(
            {"StudyInstanceUID": study_uid}, includefield=(PATIENT_ID,)
        )
        rows = [r for r in rows if first_str(r, STUDY_UID) in (study_uid, None)]
        if not rows:
            return
        patients = {first_str(r, PATIENT_ID) for r in rows}
        if len(rows) > 1 or len(patients) > 1:
            # a real-world identity error (PS3.3 C.7.2.1: one StudyInstanceUID names one
            # study of one patient): someone has to merge or split the records
            log.warning("one StudyInstanceUID stored under several patients in the archive",
                        extra={"study_uid": study_uid, "archive": self.name,
                               "rows": len(rows), "patients": len(patients)})
            raise DicomDataError(
                f"{STUDY_UID_TAG} {study_uid} is stored under {len(patients)} patients "
                f"({len(rows)} QIDO rows) in archive {self.name!r}; the archive cannot "
                f"return its metadata as one study. Not treated as gone: merge or split "
                f"the patient records in the archive",
                tag=STUDY_UID_TAG,
            ) from cause
        raise ArchiveRejected(
            f"study {study_uid} is listed by QIDO-RS but its WADO-RS metadata was not "
            f"found in archive {self.name!r}; not treated as gone",
            status_code=404,
        ) from cause

    async def series_instances(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """QIDO-RS instances of one series (PS3.18 10.6.1.2)."""
        path = (f"studies/{uid_segment(study_uid)}/series/"
                f"{uid_segment(series_uid, tag=SERIES_UID_TAG)}/instances")
        return await self._get_json(path)

    # --- WADO-RS metadata (PS3.18 10.4.1.1.2) -------------------------------------------------

    async def study_instances(self, study_uid: str) -> list[DicomJson]:
        """Every instance of the study as DICOM JSON, with study and series attributes.

        WADO-RS metadata rather than QIDO instance search: it carries sequences
        (ProcedureCodeSequence, IssuerOfAccessionNumberSequence) that QIDO may omit.
        Bulk data is replaced by BulkDataURI, so the payload stays small.
        """
        try:
            instances = await self._get_json(f"studies/{uid_segment(study_uid)}/metadata",
                                             study_uid=study_uid)
            if not instances:
                raise StudyGone(f"study {study_uid} has no instances in archive {self.name!r}")
        except StudyGone as exc:
            await self.confirm_gone(study_uid, cause=exc)
            raise
        return instances

    async def ping(self) -> None:
        """Raise unless the archive answers an (empty) QIDO query."""
        await self.search_studies({"StudyInstanceUID": "1.2.3.4.5.6.7.8.9"}, limit=1)
