"""The two DicomwebSource implementations give the mapping the same study: Orthanc's
WADO-RS metadata and the Part-10 files' index map to the same ImagingStudy, so preview of
local files shows what the sync writes from the archive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.archive.client import DicomwebClient
from bridge.archive.local_files import LocalFilesSource
from bridge.config import ArchiveSettings
from bridge.mapping import EndpointSpec, MappingEngine, load_mapping
from tests.integration.archive.conftest import Loaded

DEFAULT = Path(__file__).resolve().parents[3] / "mappings" / "default.yaml"


async def test_metadata_from_orthanc_and_from_files_map_alike(loaded: Loaded) -> None:
    engine = MappingEngine(load_mapping([DEFAULT]))
    endpoint = EndpointSpec(address="http://archive.test/dicom-web", name="archive")
    orthanc: Any = loaded.orthanc
    settings = ArchiveSettings(name="orthanc", base_url=orthanc.dicomweb_url,
                               auth={"kind": "basic", "username": orthanc.username,
                                     "password": orthanc.password})
    async with DicomwebClient(settings) as http, LocalFilesSource(loaded.folder) as files:
        for study in loaded.studies:
            uid = study.truth.study_uid
            over_http = engine.map_study(await http.study_instances(uid), endpoint=endpoint)
            from_files = engine.map_study(await files.study_instances(uid), endpoint=endpoint)
            assert from_files.imaging_study == over_http.imaging_study
            assert from_files.to_json() == over_http.to_json()
