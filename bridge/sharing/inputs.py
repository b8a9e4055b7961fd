"""What a publication's manifest is made of, read cheaply: a digest of the study's QIDO-RS
records (PS3.18 10.6), taken before the study's WADO-RS metadata is read.

Storing a manifest changes its study (one more instance, in our own manifest series), so
the sync writes the study again and queues one more ``share.publish``.  That publication
would read the whole study's metadata (the costliest call of a publication) only to find
the same manifest registered.  The publisher compares this digest with the one its last
publication recorded instead, and stops there when they are equal.

The digest covers what the manifest is built from, as far as QIDO-RS shows it:

* each series of the study but our own manifest series: its QIDO record (Series Instance
  UID, Modality, Number of Series Related Instances, ...), so an added or removed series
  or instance changes it;
* the study-level record with the Patient and General Study attributes the KOS copies
  (:data:`bridge.sharing.kos.COPIED`), without the study's counts and ModalitiesInStudy
  (which our own manifest changes);
* ``salt``: the policy and the Retrieve URL root, so a changed policy or gateway URL
  publishes again.

Like the sync's change fingerprint (:func:`bridge.archive.dicomjson.study_fingerprint`)
it does not see an instance replaced by another in the same series with the count
unchanged between two looks, nor an instance-level change (ConfidentialityCode): such a
study is published again at its next change.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Protocol

from bridge.mapping.tags import (
    MODALITIES_IN_STUDY,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    SERIES_INSTANCE_UID,
    STUDY_INSTANCE_UID,
)
from bridge.sharing.kos import COPIED
from bridge.sharing.study import DicomJson, first_text

#: the study-level record's attributes our own manifest changes (PS3.18 10.6.3.3.1)
_CHANGED_BY_MANIFEST = frozenset({NUMBER_OF_STUDY_RELATED_SERIES,
                                  NUMBER_OF_STUDY_RELATED_INSTANCES, MODALITIES_IN_STUDY})

#: the study-level attributes asked for (includefield): those the manifest copies
STUDY_FIELDS: tuple[str, ...] = tuple(COPIED)

#: bump when the manifest's content rules change, so every study is published again
DIGEST_VERSION = "1"


class StudyRecords(Protocol):
    """An archive's QIDO-RS (bridge.archive.client.DicomwebClient)."""

    async def search_studies(self, filters: Mapping[str, str] | None = None, *,
                             limit: int | None = None, offset: int = 0,
                             includefield: Sequence[str] = ...) -> list[DicomJson]: ...

    async def study_series(self, study_uid: str) -> list[DicomJson]: ...


def _canonical(ds: DicomJson) -> str:
    return json.dumps(ds, sort_keys=True, separators=(",", ":"))


def inputs_digest(study_rows: Sequence[DicomJson], series_rows: Sequence[DicomJson], *,
                  study_uid: str, own_series: str, salt: str) -> str | None:
    """The digest of one study's QIDO records; None when the study has no record (the
    publication then reads the study, which tells whether it is gone)."""
    studies = [r for r in study_rows if first_text(r, STUDY_INSTANCE_UID) in (study_uid, None)]
    if len(studies) != 1:
        return None  # none, or one UID under several patients: the full read decides
    study = {k: v for k, v in studies[0].items() if k not in _CHANGED_BY_MANIFEST}
    series = sorted(_canonical(r) for r in series_rows
                    if first_text(r, SERIES_INSTANCE_UID) != own_series)
    h = hashlib.sha256()
    for part in (DIGEST_VERSION, salt, _canonical(study), *series):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


async def read_inputs(archive: StudyRecords, study_uid: str, *, own_series: str,
                      salt: str) -> str | None:
    """QIDO-RS of the study's record and of its series (two small queries, side by side;
    5-7 ms each on Orthanc for a 102-instance study, its WADO-RS metadata 77 ms), digested.
    The study gone raises :class:`~bridge.errors.StudyGone` (confirmed by the client)."""
    series, studies = await asyncio.gather(
        archive.study_series(study_uid),
        archive.search_studies({"StudyInstanceUID": study_uid}, includefield=STUDY_FIELDS),
        return_exceptions=True)
    for outcome in (series, studies):
        if isinstance(outcome, BaseException):
            raise outcome
    assert isinstance(series, list) and isinstance(studies, list)
    series_rows, study_rows = series, studies
    return inputs_digest(study_rows, series_rows, study_uid=study_uid,
                         own_series=own_series, salt=salt)
