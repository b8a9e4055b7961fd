"""STOW-RS of a migrated study read per instance (PS3.18 10.5.3): a 409 or 400 naming
instances in its Failed SOP Sequence refuses those instances, not the study; a refusal
naming none, or an archive that is down, is an error of the whole request."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from bridge.config import ArchiveSettings
from bridge.errors import ArchiveRejected, ArchiveUnavailable
from bridge.migration.retrieve import ReceivedInstance
from bridge.migration.stow import InstanceRefusal, read_response, stow_study
from bridge.realtime.stow_forward import StowForwarder

STUDY = "1.2.3"
CT = "1.2.840.10008.5.1.4.1.1.2"


def received(n: int) -> list[ReceivedInstance]:
    return [ReceivedInstance(f"1.2.3.4.{i}", CT, data=b"\0" * 128 + b"DICM" + bytes([i]))
            for i in range(1, n + 1)]


def answer(stored: list[str], failed: list[tuple[str, int]]) -> bytes:
    body: dict[str, object] = {}
    if stored:
        body["00081199"] = {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": [uid]}} for uid in stored]}
    if failed:
        body["00081198"] = {"vr": "SQ", "Value": [
            {"00081155": {"vr": "UI", "Value": [uid]},
             "00081197": {"vr": "US", "Value": [reason]}} for uid, reason in failed]}
    return json.dumps(body).encode()


def forwarder(handler: Callable[[httpx.Request], httpx.Response]) -> StowForwarder:
    archive = type("Archive", (), {})()
    archive.name = "test"
    archive.settings = ArchiveSettings(name="test", base_url="http://archive.test/dicom-web")
    stow = StowForwarder(archive, timeout=5)
    # StowForwarder takes no transport: its client is replaced by one on a MockTransport
    stow._client = httpx.AsyncClient(base_url="http://archive.test/dicom-web/",
                                     transport=httpx.MockTransport(handler))
    return stow


def test_a_409_response_names_each_refused_instance_and_its_reason() -> None:
    stored, refused = read_response(409, answer(["1.1"], [("1.2", 0xA700), ("1.3", 0xC000)]))
    assert stored == ["1.1"]
    assert refused == [InstanceRefusal("1.2", 0xA700, 409), InstanceRefusal("1.3", 0xC000, 409)]


async def test_chunks_are_sent_and_a_refused_instance_does_not_fail_the_study() -> None:
    parts_per_request: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == f"/dicom-web/studies/{STUDY}"
        body = request.read()
        parts_per_request.append(body.count(b"Content-Type: application/dicom\r\n"))
        if len(parts_per_request) == 1:
            return httpx.Response(200, content=answer(["1.2.3.4.1", "1.2.3.4.2"], []))
        return httpx.Response(409, content=answer([], [("1.2.3.4.3", 0xA900)]))

    stow = forwarder(handler)
    try:
        outcome = await stow_study(stow, STUDY, received(3), chunk=2)
    finally:
        await stow.aclose()
    assert parts_per_request == [2, 1]
    assert outcome.stored == ["1.2.3.4.1", "1.2.3.4.2"]
    assert outcome.refused == [InstanceRefusal("1.2.3.4.3", 0xA900, 409)]
    assert not outcome.unconfirmed and outcome.requests == 2


async def test_an_instance_named_nowhere_is_unconfirmed() -> None:
    stow = forwarder(lambda request: httpx.Response(200, content=answer(["1.2.3.4.1"], [])))
    try:
        outcome = await stow_study(stow, STUDY, received(2))
    finally:
        await stow.aclose()
    assert outcome.unconfirmed == ["1.2.3.4.2"]


@pytest.mark.parametrize(("status", "error"), [(400, ArchiveRejected),
                                               (503, ArchiveUnavailable)])
async def test_a_response_naming_no_instance_is_an_error_of_the_request(
        status: int, error: type[Exception]) -> None:
    stow = forwarder(lambda request: httpx.Response(status, content=b""))
    try:
        with pytest.raises(error, match=f"{status}"):
            await stow_study(stow, STUDY, received(1))
    finally:
        await stow.aclose()
