"""How a C-GET reports a source that aborts mid-study, fails some sub-operations, or
answers a failure status: a pynetdicom Query/Retrieve GET SCP on a loopback port plays the
misbehaving source (dcmqrscp and Orthanc cannot be made to do these on demand)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.events import Event

from bridge.errors import Permanent, Retryable
from bridge.migration.errors import LegacyAborted, LegacyRetrieveFailed
from bridge.migration.retrieve import STUDY_ROOT_GET, WARNING, get_study
from bridge.sections.migration import LegacySourceSettings
from tests.support.ports import free_port

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
ABORT_UID = "1.2.3.1"
FAIL_UID = "1.2.3.2"
#: "Unable to process" (PS3.4 C.4.3.1.4)
FAILURE = 0xC001


def instance(study_uid: str, sop_class: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = f"{study_uid}.1"
    return ds


class Misbehaving:
    """Answers a C-GET of a study with one CT and one MR instance; aborts after the first
    for :data:`ABORT_UID`; answers :data:`FAILURE` and nothing else for :data:`FAIL_UID`."""

    def __init__(self) -> None:
        self.sent: list[Dataset] = []

    def on_get(self, event: Event) -> Iterator[int | tuple[int, Dataset | None]]:
        uid = str(event.identifier.StudyInstanceUID)
        if uid == FAIL_UID:
            yield 1  # pynetdicom answers Success at once for zero sub-operations
            yield FAILURE, None
            return
        self.sent = [instance(uid, CT), instance(uid, MR)]
        yield len(self.sent)
        for number, ds in enumerate(self.sent):
            if uid == ABORT_UID and number == 1:
                event.assoc.abort()
            yield 0xFF00, ds


@contextlib.contextmanager
def serve() -> Iterator[tuple[LegacySourceSettings, Misbehaving]]:
    source = Misbehaving()
    ae = AE(ae_title="MISBEHAVING")
    ae.add_supported_context(STUDY_ROOT_GET)
    for sop_class in (CT, MR):
        # the storage classes in the SCU role for the C-GET's sub-operations (PS3.4 C.4.3)
        ae.add_supported_context(sop_class, scu_role=True, scp_role=True)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_GET, source.on_get)])
    assert server is not None  # block=False returns the running server
    try:
        yield LegacySourceSettings(name="misbehaving", ae_title="MISBEHAVING",
                                   host="127.0.0.1", port=port, connect_timeout=5,
                                   dimse_timeout=10), source
    finally:
        server.shutdown()


@pytest.fixture
def misbehaving() -> Iterator[tuple[LegacySourceSettings, Misbehaving]]:
    with serve() as served:
        yield served


async def test_every_instance_the_source_sends_is_received(
        misbehaving: tuple[LegacySourceSettings, Misbehaving]) -> None:
    settings, source = misbehaving
    got = await asyncio.to_thread(get_study, settings, "1.2.3.9", sop_classes=[CT, MR])
    assert got.complete
    assert [i.sop_instance_uid for i in got.received] == [
        ds.SOPInstanceUID for ds in source.sent]


async def test_a_failed_sub_operation_is_named_not_raised(
        misbehaving: tuple[LegacySourceSettings, Misbehaving]) -> None:
    settings, source = misbehaving
    # MR not proposed in the SCP role: the source cannot send it (PS3.4 C.4.3.3)
    got = await asyncio.to_thread(get_study, settings, "1.2.3.9", sop_classes=[CT])
    ct, mr = source.sent
    assert [i.sop_instance_uid for i in got.received] == [ct.SOPInstanceUID]
    assert got.status == WARNING and got.failed == [mr.SOPInstanceUID]
    assert not got.complete


async def test_an_association_aborted_mid_study_is_retryable(
        misbehaving: tuple[LegacySourceSettings, Misbehaving]) -> None:
    settings, _ = misbehaving
    with pytest.raises(LegacyAborted, match="aborted") as caught:
        await asyncio.to_thread(get_study, settings, ABORT_UID, sop_classes=[CT, MR])
    assert isinstance(caught.value, Retryable)


async def test_a_failure_status_with_nothing_sent_is_permanent(
        misbehaving: tuple[LegacySourceSettings, Misbehaving]) -> None:
    settings, _ = misbehaving
    with pytest.raises(LegacyRetrieveFailed, match="0xC001") as caught:
        await asyncio.to_thread(get_study, settings, FAIL_UID, sop_classes=[CT])
    assert isinstance(caught.value, Permanent) and caught.value.status == FAILURE
