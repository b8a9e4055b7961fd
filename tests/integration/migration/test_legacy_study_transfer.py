"""One study through the bridge (issue 15): C-GET from a real legacy source (DCMTK dcmqrscp,
a second Orthanc), STOW-RS into the shared Orthanc archive, then verification that both list
the same SOP Instance UIDs, and one instance's bytes as the archive returns them by WADO-RS
equal to the file loaded into the source."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from devservers.dcmqrscp import store_files

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings
from bridge.migration.client import LegacySource
from bridge.migration.stow import stow_study
from bridge.migration.verify import verify_study
from bridge.realtime.stow_forward import StowForwarder
from samples.generator import GeneratedStudy, generate_studies
from tests.integration.migration.legacy_servers import LoadedLegacy, write_files

LEGACIES = ["dcmqrscp_legacy", "orthanc_legacy"]


@dataclass(frozen=True)
class FreshStudy:
    """A study with identifiers of its own, loaded into a legacy source for one test."""

    source: LegacySource
    study: GeneratedStudy
    files: list[Path]


@pytest.fixture(params=LEGACIES)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> FreshStudy:
    legacy: LoadedLegacy = request.getfixturevalue(request.param)
    # a seed of its own: new UIDs and identifiers, unseen by the shared archive
    study = next(generate_studies(1, seed=uuid.uuid4().int % 2**32, profile="small",
                                  id_prefix="MIGT"))
    folder = tmp_path / "loaded"
    folder.mkdir()
    files = write_files([study], folder)
    settings = legacy.settings
    store_files(files, host=settings.host, port=settings.port, called_ae=settings.ae_title)
    return FreshStudy(LegacySource(settings), study, files)


@contextlib.asynccontextmanager
async def archive_clients(orthanc: Any) -> AsyncIterator[tuple[DicomwebClient, StowForwarder]]:
    """The shared Orthanc's DICOMweb client, and the bridge's STOW-RS client towards it."""
    settings = ArchiveSettings(name="orthanc", base_url=orthanc.dicomweb_url,
                               auth={"kind": "basic", "username": orthanc.username,
                                     "password": orthanc.password})
    async with DicomwebClient(settings) as archive:
        forwarder = StowForwarder(archive, timeout=60)
        try:
            yield archive, forwarder
        finally:
            await forwarder.aclose()


def dataset_part(part10: bytes) -> tuple[str, bytes]:
    """The transfer syntax and the data set's bytes of a Part-10 file, file meta left out
    (the archive and the C-GET each write their own, PS3.10 7.1)."""
    meta = pydicom.dcmread(io.BytesIO(part10), stop_before_pixels=True).file_meta
    # 128-byte preamble, "DICM", then (0002,0000) File Meta Information Group Length (UL,
    # explicit VR little endian: 8 bytes of tag, VR and length, 4 of value), PS3.10 7.1
    assert part10[128:132] == b"DICM" and part10[132:136] == b"\x02\x00\x00\x00"
    group_length = int.from_bytes(part10[140:144], "little")
    return str(meta.TransferSyntaxUID), part10[144 + group_length:]


def wado_instance(orthanc: Any, study: str, series: str, sop: str) -> bytes:
    """The instance as the archive returns it (WADO-RS, PS3.18 10.4.1.1.1), as stored."""
    resp = httpx.get(
        f"{orthanc.dicomweb_url}/studies/{study}/series/{series}/instances/{sop}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        auth=(orthanc.username, orthanc.password), timeout=30)
    resp.raise_for_status()
    boundary = resp.headers["content-type"].split("boundary=")[1].split(";")[0].strip('"')
    part = resp.content.split(b"--" + boundary.encode())[1]
    return part.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")


async def test_a_study_is_got_stowed_and_verified_equal(
        fresh: FreshStudy, orthanc: Any, tmp_path: Path) -> None:
    async with archive_clients(orthanc) as (archive, forwarder):
        await got_stowed_and_verified(fresh, archive, forwarder, tmp_path)


async def got_stowed_and_verified(fresh: FreshStudy, archive: DicomwebClient,
                                  forwarder: StowForwarder, tmp_path: Path) -> None:
    uid = fresh.study.truth.study_uid
    loaded = {ds.SOPInstanceUID for ds in fresh.study.instances()}
    assert (await verify_study(fresh.source, archive, uid)).missing == tuple(sorted(loaded))

    spool = tmp_path / "spool"
    spool.mkdir()
    got = await fresh.source.get_study(uid, spool=spool)
    assert got.complete and not got.failed
    assert {i.sop_instance_uid for i in got.received} == loaded
    assert all(i.path is not None and i.path.parent == spool for i in got.received)

    # chunks of 2: a study of several instances takes several requests
    stowed = await stow_study(forwarder, uid, got.received, chunk=2)
    assert sorted(stowed.stored) == sorted(loaded)
    assert not stowed.refused and not stowed.unconfirmed
    assert stowed.requests == (len(loaded) + 1) // 2

    verified = await verify_study(fresh.source, archive, uid)
    assert verified.equal
    assert verified.source_count == verified.archive_count == len(loaded)


async def test_one_instance_reaches_the_archive_byte_for_byte(
        fresh: FreshStudy, orthanc: Any) -> None:
    uid = fresh.study.truth.study_uid
    got = await fresh.source.get_study(uid)  # in memory
    assert all(i.data is not None for i in got.received)
    async with archive_clients(orthanc) as (_, forwarder):
        await stow_study(forwarder, uid, got.received)

    source_file = fresh.files[0].read_bytes()
    original = next(fresh.study.instances())
    from_archive = wado_instance(orthanc, uid, original.SeriesInstanceUID,
                                 original.SOPInstanceUID)
    assert dataset_part(from_archive) == dataset_part(source_file)


async def test_some_instances_are_got_at_image_level(fresh: FreshStudy) -> None:
    # the retry of instances a verification found missing: C-GET at IMAGE level with a
    # list of SOP Instance UIDs, one C-GET per series
    uid = fresh.study.truth.study_uid
    listed = await fresh.source.study_instances(uid)
    wanted = listed[:2] if len(listed) > 1 else listed
    got = await fresh.source.get_instances(wanted)
    assert got.complete
    assert sorted(i.sop_instance_uid for i in got.received) == sorted(
        i.sop_instance_uid for i in wanted)
