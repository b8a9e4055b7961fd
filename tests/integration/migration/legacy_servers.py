"""What the migration tests' legacy servers are: their AE titles, the result cap of the
Orthanc one, and a loaded server's settings and studies (fixtures in ``conftest.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bridge.config import ArchiveSettings
from bridge.sections.migration import LegacySourceSettings
from samples.generator import GeneratedStudy

CALLING_AE = "BRIDGE-MIG-TEST"
ORTHANC_AE = "ORTHANC-LEGACY"
#: the bridge's move receiver, as the legacy servers know it
RECEIVER_AE = "BRIDGE-MV-TEST"
#: Orthanc's LimitFindResults here: below the number of studies loaded, so that a query of
#: the whole range is capped
ORTHANC_FIND_LIMIT = 2
STUDIES = 5


@dataclass(frozen=True)
class LoadedLegacy:
    """A running legacy source, the settings to reach it, and the studies loaded into it."""

    settings: LegacySourceSettings
    studies: list[GeneratedStudy]


def write_files(studies: list[GeneratedStudy], folder: Path) -> list[Path]:
    """Each study's instances as Part-10 files in ``folder``."""
    paths = []
    for study in studies:
        for number, data in enumerate(study.part10()):
            path = folder / f"{study.truth.index}-{number}.dcm"
            path.write_bytes(data)
            paths.append(path)
    return paths


def settings_for(name: str, ae_title: str, port: int) -> LegacySourceSettings:
    """Settings reaching a test server on loopback with our test calling AE title."""
    return LegacySourceSettings(name=name, ae_title=ae_title, host="127.0.0.1", port=port,
                                calling_ae_title=CALLING_AE, connect_timeout=5,
                                dimse_timeout=30)


def archive_settings(orthanc: Any) -> ArchiveSettings:
    """The bridge's settings of a test Orthanc's DICOMweb API."""
    return ArchiveSettings(name="orthanc", base_url=orthanc.dicomweb_url,
                           auth={"kind": "basic", "username": orthanc.username,
                                 "password": orthanc.password})


def archive_sop_uids(orthanc: Any, study_uid: str) -> list[str]:
    """The study's SOP Instance UIDs as the archive lists them (QIDO-RS), duplicates kept."""
    resp = httpx.get(f"{orthanc.dicomweb_url}/studies/{study_uid}/instances",
                     auth=(orthanc.username, orthanc.password), timeout=30)
    if resp.status_code == 204 or not resp.content:
        return []
    resp.raise_for_status()
    return sorted(item["00080018"]["Value"][0] for item in resp.json())


def loaded_uids(study: GeneratedStudy) -> list[str]:
    """The SOP Instance UIDs of a generated study."""
    return sorted(str(ds.SOPInstanceUID) for ds in study.instances())
