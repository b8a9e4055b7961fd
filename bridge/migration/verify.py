"""Verification of one migrated study: the SOP Instance UIDs the legacy source lists
(C-FIND at IMAGE level, PS3.4 C.6.2.1) against those the archive lists (QIDO-RS instances
of each series, PS3.18 10.6.1.2)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from bridge.archive.client import DicomwebClient
from bridge.archive.dicomjson import first_str
from bridge.errors import StudyGone
from bridge.migration.client import LegacySource

__all__ = ["StudyVerification", "archive_instances", "compare_with_archive", "verify_study"]

SERIES_UID = "0020000E"
SOP_INSTANCE_UID = "00080018"


@dataclass(frozen=True, slots=True)
class StudyVerification:
    """The study's instances at the source and at the archive: ``missing`` are at the
    source only, ``extra`` at the archive only (both sorted)."""

    study_uid: str
    source_count: int
    archive_count: int
    missing: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def equal(self) -> bool:
        return not self.missing and not self.extra


async def archive_instances(archive: DicomwebClient, study_uid: str) -> set[str]:
    """The SOP Instance UIDs of ``study_uid`` in the archive; empty if it has none."""
    try:
        series = await archive.study_series(study_uid)
    except StudyGone:
        return set()
    found: set[str] = set()
    for item in series:
        series_uid = first_str(item, SERIES_UID)
        if series_uid:
            for instance in await archive.series_instances(study_uid, series_uid):
                sop_uid = first_str(instance, SOP_INSTANCE_UID)
                if sop_uid:
                    found.add(sop_uid)
    return found


async def verify_study(source: LegacySource, archive: DicomwebClient,
                       study_uid: str) -> StudyVerification:
    """Compare the source's and the archive's instances of ``study_uid``."""
    at_source = {i.sop_instance_uid for i in await source.study_instances(study_uid)}
    return await compare_with_archive(archive, study_uid, at_source)


async def compare_with_archive(archive: DicomwebClient, study_uid: str,
                               at_source: Collection[str]) -> StudyVerification:
    """Compare the SOP Instance UIDs ``at_source`` (the source's list, already asked for)
    with the archive's instances of ``study_uid``."""
    listed = set(at_source)
    at_archive = await archive_instances(archive, study_uid)
    return StudyVerification(study_uid, len(listed), len(at_archive),
                             tuple(sorted(listed - at_archive)),
                             tuple(sorted(at_archive - listed)))
