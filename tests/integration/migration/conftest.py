"""Two legacy PACS for the migration tests, each started for this package and loaded with
its own small generated studies over C-STORE (DCMTK ``storescu``):

* ``dcmqrscp_legacy``: DCMTK's ``dcmqrscp`` (no C-FIND result cap; returns no counts);
* ``orthanc_legacy``: a second Orthanc, its DICOM server on, checking the called AE title,
  knowing our calling AE title, and capping C-FIND results at :data:`ORTHANC_FIND_LIMIT`
  (it then answers Cancel 0xFE00 after the matches it sent).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import devstack
import pytest
from devservers.dcmqrscp import Dcmqrscp, store_files

from samples.generator import generate_studies
from tests.integration.migration.legacy_servers import (
    CALLING_AE,
    ORTHANC_AE,
    ORTHANC_FIND_LIMIT,
    RECEIVER_AE,
    STUDIES,
    LoadedLegacy,
    settings_for,
    write_files,
)
from tests.support.ports import free_port


@pytest.fixture(scope="package")
def dcmqrscp_legacy() -> Iterator[LoadedLegacy]:
    studies = list(generate_studies(STUDIES, seed=1501, profile="small", id_prefix="MIGQ"))
    with Dcmqrscp(ae_title="LEGACY-QR") as server, tempfile.TemporaryDirectory() as tmp:
        store_files(write_files(studies, Path(tmp)), host=server.host, port=server.port,
                    called_ae=server.ae_title)
        yield LoadedLegacy(settings_for("dcmqrscp", server.ae_title, server.port), studies)


@pytest.fixture(scope="package")
def move_receiver_port() -> int:
    """The port of the bridge's move receiver the legacy Orthanc knows (C-MOVE tests)."""
    return free_port()


@pytest.fixture(scope="package")
def orthanc_legacy(move_receiver_port: int) -> Iterator[LoadedLegacy]:
    studies = list(generate_studies(STUDIES, seed=1502, profile="small", id_prefix="MIGO"))
    port = free_port()
    config = {
        "DicomServerEnabled": True,
        "DicomPort": port,
        "DicomAet": ORTHANC_AE,
        "DicomCheckCalledAet": True,
        # Orthanc answers C-FIND only to the modalities it knows, and moves only to them
        "DicomModalities": {"bridge": [CALLING_AE, "127.0.0.1", 104],
                            "receiver": [RECEIVER_AE, "127.0.0.1", move_receiver_port]},
        "LimitFindResults": ORTHANC_FIND_LIMIT,
    }
    with devstack.Orthanc(extra_config=config), tempfile.TemporaryDirectory() as tmp:
        store_files(write_files(studies, Path(tmp)), host="127.0.0.1", port=port,
                    called_ae=ORTHANC_AE)
        yield LoadedLegacy(settings_for("orthanc-legacy", ORTHANC_AE, port), studies)
