"""One archive, two real implementations: every contract test runs against the shared
Orthanc over DICOMweb (:class:`~bridge.archive.client.DicomwebClient`) and against the
same studies written as Part-10 files (:class:`~bridge.archive.local_files.
LocalFilesSource`), as dicomweb-client tests its HTTP and local-files modes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bridge.archive.client import DicomwebClient
from bridge.archive.local_files import LocalFilesSource
from bridge.archive.source import DicomwebSource
from bridge.config import ArchiveSettings
from samples.generator import GeneratedStudy, generate_studies, write_part10
from samples.load import load_studies

#: small pages, so that two studies take several
PAGE_SIZE = 1


@dataclass(frozen=True)
class Loaded:
    """The test's studies, in Orthanc and as files in ``folder``."""

    studies: list[GeneratedStudy]
    folder: Path
    orthanc: Any

    @property
    def patient_id(self) -> str:
        [pid] = {s.truth.patient_id for s in self.studies}
        return pid


def write_files(studies: list[GeneratedStudy], folder: Path) -> None:
    """Each instance as a Part-10 file, one folder per study."""
    for study in studies:
        where = folder / study.truth.study_uid
        where.mkdir(parents=True)
        for n, ds in enumerate(study.instances()):
            (where / f"{n:04d}.dcm").write_bytes(write_part10(ds))


@pytest.fixture(scope="module")
def loaded(orthanc: Any, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """Two generated studies of one patient (IDs unique to this run), in the shared
    Orthanc and on disk."""
    token = uuid.uuid4().hex  # unique to this run: the shared Orthanc keeps other tests' data
    studies = list(generate_studies(2, seed=int(token[:8], 16), profile="small", patients=1,
                                    id_prefix=token[:6].upper()))
    result = load_studies(studies, url=orthanc.dicomweb_url, username=orthanc.username,
                          password=orthanc.password)
    assert result.failed_studies == 0, result.errors
    folder = tmp_path_factory.mktemp("part10")
    write_files(studies, folder)
    return Loaded(studies, folder, orthanc)


@pytest_asyncio.fixture(params=["http", "local-files"], loop_scope="function")
async def source(request: pytest.FixtureRequest, loaded: Loaded
                 ) -> AsyncIterator[DicomwebSource]:
    if request.param == "http":
        orthanc = loaded.orthanc
        settings = ArchiveSettings(
            name="orthanc", base_url=orthanc.dicomweb_url, page_size=PAGE_SIZE,
            auth={"kind": "basic", "username": orthanc.username,
                  "password": orthanc.password})
        async with DicomwebClient(settings) as client:
            yield client
    else:
        async with LocalFilesSource(loaded.folder, name="files",
                                    page_size=PAGE_SIZE) as local:
            yield local
