"""How the legacy client reports a source that aborts, answers a failure status, or is out
of associations: a pynetdicom Query/Retrieve SCP on a loopback port plays the misbehaving
source (dcmqrscp and Orthanc cannot be made to do these on demand)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.events import Event

from bridge.errors import Outage, Permanent, Retryable
from bridge.migration.client import LegacySource
from bridge.migration.errors import LegacyAborted, LegacyQueryFailed, LegacyUnavailable
from bridge.sections.migration import LegacySourceSettings
from tests.support.ports import free_port

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
VERIFICATION = "1.2.840.10008.1.1"
ABORT_UID = "1.2.3.1"
FAIL_UID = "1.2.3.2"
#: "Unable to process" (PS3.4 C.4.1.1.4)
FAILURE = 0xC001


def on_find(event: Event) -> Iterator[tuple[int, Dataset | None]]:
    uid = event.identifier.StudyInstanceUID
    if uid == ABORT_UID:
        event.assoc.abort()
        yield 0xFF00, None  # never sent: the association is gone
        return
    if uid == FAIL_UID:
        yield FAILURE, None
        return
    match = Dataset()
    match.QueryRetrieveLevel = "STUDY"
    match.StudyInstanceUID = uid
    yield 0xFF00, match


@contextlib.contextmanager
def serve(**options: Any) -> Iterator[LegacySourceSettings]:
    ae = AE(ae_title="MISBEHAVING")
    ae.add_supported_context(STUDY_ROOT_FIND)
    ae.add_supported_context(VERIFICATION)
    for name, value in options.items():
        setattr(ae, name, value)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(evt.EVT_C_FIND, on_find)])
    assert server is not None  # block=False returns the running server
    try:
        yield LegacySourceSettings(name="misbehaving", ae_title="MISBEHAVING",
                                   host="127.0.0.1", port=port, connect_timeout=5,
                                   dimse_timeout=10)
    finally:
        server.shutdown()


@pytest.fixture
def misbehaving() -> Iterator[LegacySourceSettings]:
    with serve() as settings:
        yield settings


async def test_a_well_formed_answer_is_read(misbehaving: LegacySourceSettings) -> None:
    study = await LegacySource(misbehaving).find_study("1.2.3.9")
    assert study is not None and study.study_uid == "1.2.3.9"


async def test_an_association_aborted_during_a_find_is_retryable(
        misbehaving: LegacySourceSettings) -> None:
    with pytest.raises(LegacyAborted, match="aborted") as caught:
        await LegacySource(misbehaving).find_study(ABORT_UID)
    assert isinstance(caught.value, Retryable)


async def test_a_failure_status_is_permanent_and_named_in_hex(
        misbehaving: LegacySourceSettings) -> None:
    with pytest.raises(LegacyQueryFailed, match="0xC001") as caught:
        await LegacySource(misbehaving).find_study(FAIL_UID)
    assert isinstance(caught.value, Permanent) and caught.value.status == FAILURE


async def test_a_source_out_of_associations_is_an_outage() -> None:
    # pynetdicom rejects transiently (result 2, "local limit exceeded", PS3.8 9.3.4) once
    # more than maximum_associations are open, this one included
    with serve(maximum_associations=1) as settings:
        other = AE(ae_title="OTHER-USER")
        other.add_requested_context(VERIFICATION)
        held = other.associate(settings.host, settings.port, ae_title=settings.ae_title)
        assert held.is_established
        try:
            with pytest.raises(LegacyUnavailable, match="for now") as caught:
                await LegacySource(settings).echo()
        finally:
            held.release()
        assert isinstance(caught.value, Outage)
