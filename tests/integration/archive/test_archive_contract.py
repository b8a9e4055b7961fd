"""The DicomwebSource contract (bridge/archive/source.py), proven against both real
implementations: Orthanc over DICOMweb and the same studies as indexed Part-10 files.

What the sync, the change sources and preview rely on: QIDO-RS study, series and
instance searches (PS3.18 10.6) with the study-level counts and modalities the
fingerprint uses, limit/offset paging (8.3.4.4), WADO-RS study metadata (10.4.1.1.2),
and "gone" only for a study no search finds.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bridge.archive.dicomjson import STUDY_UID, first_int, first_str, values
from bridge.archive.source import DicomwebSource
from bridge.errors import ArchiveRejected, StudyGone
from tests.integration.archive.conftest import Loaded

#: a valid UID no test loads
ABSENT = "2.25.1234567890123456789012345678901"


def _uids(rows: list[dict[str, object]], tag: str = STUDY_UID) -> set[str | None]:
    return {first_str(r, tag) for r in rows}


async def test_a_study_is_found_by_uid_with_its_counts_and_modalities(
    source: DicomwebSource, loaded: Loaded
) -> None:
    for study in loaded.studies:
        truth = study.truth
        [row] = await source.search_studies({"StudyInstanceUID": truth.study_uid})
        assert first_str(row, STUDY_UID) == truth.study_uid
        assert first_str(row, "00100020") == truth.patient_id
        assert first_str(row, "00080020") == truth.study_date
        assert first_str(row, "00080050") == truth.accession_number
        assert first_int(row, "00201206") == truth.series_count
        assert first_int(row, "00201208") == truth.instance_count
        assert set(values(row, "00080061")) == set(truth.modalities)
        assert first_str(await source.study(truth.study_uid), STUDY_UID) == truth.study_uid


async def test_patient_and_date_range_matching(source: DicomwebSource, loaded: Loaded) -> None:
    mine = {s.truth.study_uid for s in loaded.studies}
    assert _uids(await source.search_studies({"PatientID": loaded.patient_id})) == mine
    first = loaded.studies[0].truth
    day = date(int(first.study_date[:4]), int(first.study_date[4:6]), int(first.study_date[6:]))
    around = f"{day - timedelta(days=1):%Y%m%d}-{day + timedelta(days=1):%Y%m%d}"
    found = await source.search_studies({"PatientID": loaded.patient_id, "StudyDate": around})
    assert first.study_uid in _uids(found)
    before = f"-{day - timedelta(days=1):%Y%m%d}"
    found = await source.search_studies({"StudyInstanceUID": first.study_uid,
                                         "StudyDate": before})
    assert found == []


async def test_paging_returns_every_study_once(source: DicomwebSource, loaded: Loaded) -> None:
    pages = [page.rows async for page in source.study_pages({"PatientID": loaded.patient_id})]
    assert [len(rows) for rows in pages] == [1, 1, 0]  # page size 1: a full last page
    seen = [first_str(rows[0], STUDY_UID) for rows in pages if rows]
    assert sorted(map(str, seen)) == sorted(s.truth.study_uid for s in loaded.studies)
    listed = [r async for r in source.iter_studies({"PatientID": loaded.patient_id})]
    assert len(listed) == 2
    one = await source.search_studies({"PatientID": loaded.patient_id}, limit=1, offset=1)
    assert len(one) == 1 and first_str(one[0], STUDY_UID) == seen[1]


async def test_series_and_instances_of_a_study(source: DicomwebSource, loaded: Loaded) -> None:
    truth = loaded.studies[0].truth
    series = await source.study_series(truth.study_uid)
    assert _uids(series, "0020000E") == {s.series_uid for s in truth.series}
    for row in series:
        [want] = [s for s in truth.series if s.series_uid == first_str(row, "0020000E")]
        assert first_str(row, "00080060") == want.modality
        assert first_int(row, "00201209") == want.instance_count
        instances = await source.series_instances(truth.study_uid, want.series_uid)
        assert len(_uids(instances, "00080018")) == want.instance_count
        assert _uids(instances, "0020000E") == {want.series_uid}


async def test_study_metadata_holds_every_instance(source: DicomwebSource, loaded: Loaded
                                                    ) -> None:
    study = loaded.studies[0]
    metadata = await source.study_instances(study.truth.study_uid)
    assert _uids(metadata, "00080018") == {ds.SOPInstanceUID for ds in study.instances()}
    assert _uids(metadata) == {study.truth.study_uid}
    for instance in metadata:  # every level's attributes, as WADO-RS metadata gives them
        assert first_str(instance, "00100020") == study.truth.patient_id
        assert first_str(instance, "00080060") in study.truth.modalities
        assert "7FE00010" not in instance or "InlineBinary" not in instance["7FE00010"]


async def test_a_study_no_search_finds_is_gone(source: DicomwebSource) -> None:
    assert await source.search_studies({"StudyInstanceUID": ABSENT}) == []
    with pytest.raises(StudyGone):
        await source.study(ABSENT)
    with pytest.raises(StudyGone):
        await source.study_instances(ABSENT)
    await source.confirm_gone(ABSENT, cause=StudyGone("test"))


async def test_a_study_a_search_finds_is_not_gone(source: DicomwebSource, loaded: Loaded
                                                  ) -> None:
    with pytest.raises(ArchiveRejected):
        await source.confirm_gone(loaded.studies[0].truth.study_uid, cause=StudyGone("test"))
    await source.ping()
