"""LocalFilesSource's own behaviour beyond the shared contract (tests/integration/archive):
an incremental index, files that are not DICOM, the result cap, unsupported keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bridge.archive.dicomjson import STUDY_UID, first_int, first_str
from bridge.archive.local_files import LocalFilesSource
from bridge.errors import ArchiveRejected, DicomDataError
from samples.generator import GeneratedStudy, generate_studies, write_part10


def _write(study: GeneratedStudy, folder: Path) -> list[Path]:
    written = []
    for n, ds in enumerate(study.instances()):
        path = folder / f"{study.truth.study_uid}-{n}.dcm"
        path.write_bytes(write_part10(ds))
        written.append(path)
    return written


@pytest.fixture
def studies() -> list[GeneratedStudy]:
    return list(generate_studies(3, seed=11, profile="small", id_prefix="LOCAL"))


async def test_reindex_reads_only_new_and_changed_files_and_forgets_removed_ones(
    tmp_path: Path, studies: list[GeneratedStudy]
) -> None:
    first = _write(studies[0], tmp_path)
    index = tmp_path / "index.sqlite"
    source = LocalFilesSource(tmp_path, index=index)
    assert source.study_uids() == [studies[0].truth.study_uid]
    assert source.reindex() == 0  # nothing changed (the index file itself is not read)
    _write(studies[1], tmp_path)
    assert source.reindex() == studies[1].truth.instance_count
    first[0].unlink()
    source.reindex()
    [row] = await source.search_studies({"StudyInstanceUID": studies[0].truth.study_uid})
    assert first_int(row, "00201208") == studies[0].truth.instance_count - 1
    await source.aclose()
    # the index kept in a file is reopened without reading a file again
    again = LocalFilesSource(tmp_path, index=index)
    assert again.reindex() == 0 and len(again.study_uids()) == 2
    again.close()


async def test_a_file_that_is_not_dicom_is_skipped_or_refused(
    tmp_path: Path, studies: list[GeneratedStudy]
) -> None:
    _write(studies[0], tmp_path)
    (tmp_path / "README.txt").write_text("not an image")
    source = LocalFilesSource(tmp_path)
    assert source.skipped == [tmp_path / "README.txt"]
    assert len(await source.search_studies()) == 1
    source.close()
    with pytest.raises(DicomDataError, match=r"README\.txt"):
        LocalFilesSource(tmp_path, strict=True)


async def test_the_result_cap_is_a_capped_page(tmp_path: Path,
                                               studies: list[GeneratedStudy]) -> None:
    for study in studies:
        _write(study, tmp_path)
    source = LocalFilesSource(tmp_path, page_size=10, max_results=2)
    pages = [page async for page in source.study_pages()]
    assert [(len(p.rows), p.capped) for p in pages] == [(2, True)]
    assert len(await source.search_studies(offset=1)) == 1
    source.close()


async def test_matching_keys(tmp_path: Path, studies: list[GeneratedStudy]) -> None:
    for study in studies:
        _write(study, tmp_path)
    source = LocalFilesSource(tmp_path)
    truth = studies[0].truth
    both = f"{truth.study_uid},{studies[1].truth.study_uid}"
    assert len(await source.search_studies({"StudyInstanceUID": both})) == 2
    found = await source.search_studies({"AccessionNumber": truth.accession_number[:4] + "*"})
    assert truth.study_uid in {first_str(r, STUDY_UID) for r in found}
    assert await source.search_studies({"StudyDate": truth.study_date,
                                        "StudyInstanceUID": truth.study_uid})
    assert await source.search_studies({"ModalitiesInStudy": truth.modalities[0],
                                        "StudyInstanceUID": truth.study_uid})
    with pytest.raises(ArchiveRejected, match="cannot match 'ReferringPhysicianName'"):
        await source.search_studies({"ReferringPhysicianName": "X*"})
    source.close()


def test_an_unchanged_file_with_a_new_time_is_read_again(
    tmp_path: Path, studies: list[GeneratedStudy]
) -> None:
    [path, *_] = _write(studies[0], tmp_path)
    source = LocalFilesSource(tmp_path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert source.reindex() == 1
    source.close()
