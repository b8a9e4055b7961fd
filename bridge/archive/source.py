"""What the bridge needs of an archive, as a protocol, and the one QIDO paging loop.

:class:`DicomwebSource` is the archive as the sync, the change sources, preview and the
benchmarks use it: QIDO-RS searches at the study, series and instance levels (PS3.18
10.6), paged with ``limit``/``offset`` (8.3.4.4), WADO-RS study metadata (10.4.1.1.2), and
the check that a study is really gone.  Two real implementations keep each other honest
(as dicomweb-client's HTTP and local-files modes do): :class:`~bridge.archive.client.
DicomwebClient` speaks DICOMweb over HTTP, :class:`~bridge.archive.local_files.
LocalFilesSource` answers from DICOM Part-10 files indexed in SQLite.  Both pass the same
contract tests (``tests/integration/archive``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from bridge.archive.dicomjson import DicomJson
from bridge.dicom_uid import require_uid
from bridge.errors import StudyGone

#: how one page request is made: ``await guard(request)``; a scan passes its patience
#: (retrying outages), the default calls the request once
Guard = Callable[[Callable[[], Awaitable[list[DicomJson]]]], Awaitable[list[DicomJson]]]

#: study-level attributes asked for in QIDO (PS3.18 10.6.1.2.2 includefield); the
#: fingerprint depends on them, so keep them stable
STUDY_INCLUDE = (
    "00080020",  # StudyDate
    "00080030",  # StudyTime
    "00080050",  # AccessionNumber
    "00080061",  # ModalitiesInStudy
    "00081030",  # StudyDescription
    "00100020",  # PatientID
    "00201206",  # NumberOfStudyRelatedSeries
    "00201208",  # NumberOfStudyRelatedInstances
)


@dataclass(frozen=True, slots=True)
class QidoPage:
    """One page of a paged QIDO-RS search."""

    rows: list[DicomJson]
    #: the archive's result cap (``max_results``) was reached: matches past it are unseen
    capped: bool = False


async def _once(request: Callable[[], Awaitable[list[DicomJson]]]) -> list[DicomJson]:
    return await request()


async def qido_pages(
    search: Callable[[int, int], Awaitable[list[DicomJson]]],
    *,
    page_size: int,
    max_results: int | None,
    guard: Guard | None = None,
) -> AsyncIterator[QidoPage]:
    """Every page of a search, ``search(limit, offset)``, until a short page or the cap.

    PS3.18 8.3.4.4: the archive returns at most ``limit`` matches from ``offset``; a page
    shorter than the limit is the last.  An archive that caps its results (Orthanc's
    LimitFindResults) never returns more than ``max_results`` in all, so the pages are
    no longer than the cap and the page reaching it is marked :attr:`QidoPage.capped`.
    """
    page = page_size if max_results is None else min(page_size, max_results)
    call = guard or _once
    offset = 0
    while True:
        rows = await call(partial(search, page, offset))
        capped = max_results is not None and offset + len(rows) >= max_results
        yield QidoPage(rows, capped=capped)
        if capped or len(rows) < page:
            return
        offset += len(rows)


class DicomwebSource(Protocol):
    """An archive as the bridge reads it (PS3.18 QIDO-RS and WADO-RS metadata)."""

    @property
    def name(self) -> str:
        """The archive's configured name (the state store's key)."""
        ...

    async def search_studies(
        self, filters: Mapping[str, str] | None = None, *, limit: int | None = None,
        offset: int = 0, includefield: Sequence[str] = STUDY_INCLUDE,
    ) -> list[DicomJson]:
        """One QIDO-RS study search (PS3.18 10.6.1.2): ``filters`` by keyword
        (``StudyInstanceUID``, ``StudyDate`` ranges, ``PatientID``, ...)."""
        ...

    def study_pages(
        self, filters: Mapping[str, str] | None = None, *, guard: Guard | None = None
    ) -> AsyncIterator[QidoPage]:
        """Every page of a study search, with the archive's page size and result cap."""
        ...

    def iter_studies(self, filters: Mapping[str, str] | None = None) -> AsyncIterator[DicomJson]:
        """Every matching study, all pages."""
        ...

    async def study(self, study_uid: str) -> DicomJson:
        """The study's QIDO record, or :class:`~bridge.errors.StudyGone`."""
        ...

    async def study_series(self, study_uid: str) -> list[DicomJson]:
        """QIDO-RS series of the study (PS3.18 10.6.1.2: ``studies/{uid}/series``)."""
        ...

    async def series_instances(self, study_uid: str, series_uid: str) -> list[DicomJson]:
        """QIDO-RS instances of one series (``studies/{uid}/series/{uid}/instances``)."""
        ...

    async def study_instances(self, study_uid: str) -> list[DicomJson]:
        """WADO-RS metadata of every instance of the study (PS3.18 10.4.1.1.2), or
        :class:`~bridge.errors.StudyGone` once :meth:`confirm_gone` agreed."""
        ...

    async def confirm_gone(self, study_uid: str, *, cause: StudyGone) -> None:
        """Return only if a QIDO search for the UID finds no row; otherwise raise the
        error that explains the unreadable study."""
        ...

    async def ping(self) -> None:
        """Raise unless the archive answers a query."""
        ...

    async def aclose(self) -> None:
        """Release connections or files."""
        ...


class StudySearches:
    """What follows from one QIDO study search, the same for every implementation:
    :meth:`study_pages`, :meth:`iter_studies` and :meth:`study`."""

    name: str
    page_size: int
    max_results: int | None

    async def search_studies(
        self, filters: Mapping[str, str] | None = None, *, limit: int | None = None,
        offset: int = 0, includefield: Sequence[str] = STUDY_INCLUDE,
    ) -> list[DicomJson]:
        raise NotImplementedError

    async def study_pages(
        self, filters: Mapping[str, str] | None = None, *, guard: Guard | None = None
    ) -> AsyncIterator[QidoPage]:
        """Every page of a study search (limit/offset, PS3.18 8.3.4.4), with the archive's
        page size and result cap; ``guard`` makes each request (a scan's patience)."""
        async def search(limit: int, offset: int) -> list[DicomJson]:
            return await self.search_studies(filters, limit=limit, offset=offset)

        async for page in qido_pages(search, page_size=self.page_size,
                                     max_results=self.max_results, guard=guard):
            yield page

    async def iter_studies(self, filters: Mapping[str, str] | None = None
                           ) -> AsyncIterator[DicomJson]:
        """All matching studies, page by page."""
        async for page in self.study_pages(filters):
            for study in page.rows:
                yield study

    async def study(self, study_uid: str) -> DicomJson:
        """The study's QIDO record, or :class:`~bridge.errors.StudyGone`."""
        found = await self.search_studies({"StudyInstanceUID": require_uid(study_uid)})
        if not found:
            raise StudyGone(f"study {study_uid} is not in archive {self.name!r}")
        return found[0]
