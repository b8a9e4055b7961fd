"""Unit tests of the real-time building blocks: signatures, multipart checks, STOW answers,
coalescing, inbound auth and settings."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from pydantic import SecretStr

from bridge.auth.inbound import authenticate
from bridge.clock import ManualClock
from bridge.config import InboundAuthSettings, RealtimeSettings, Settings
from bridge.errors import ConfigError
from bridge.realtime.coalesce import Coalescer
from bridge.realtime.multipart import MultipartError, MultipartInspector, parse_content_type
from bridge.realtime.signing import (
    MemoryReplayCache,
    ReplayCache,
    SignatureError,
    sign,
    verify_signature,
)
from bridge.realtime.stow_response import stored_studies
from bridge.state.enums import Reason

SECRET = b"0123456789abcdef0123"

# --- signatures ---------------------------------------------------------------------------


def _verify(body: bytes, ts: str | None, sig: str | None, *, now: float = 1000.0,
            replays: ReplayCache | None = None) -> None:
    verify_signature(secret=SECRET, body=body, timestamp=ts, signature=sig, tolerance=300,
                     replays=replays or MemoryReplayCache(window=300, clock=ManualClock(now)),
                     now=now)


def test_a_correct_signature_is_accepted_once() -> None:
    replays = MemoryReplayCache(window=300, clock=ManualClock(1000.0))
    sig = sign(SECRET, "1000", b"{}")
    _verify(b"{}", "1000", sig, replays=replays)
    with pytest.raises(SignatureError, match="replayed"):
        _verify(b"{}", "1000", sig, replays=replays)


@pytest.mark.parametrize(("ts", "sig", "message"), [
    (None, None, "missing header"),
    ("1000", None, "missing header X-Bridge-Signature"),
    ("abc", "sha256=00", "unix seconds"),
    ("1000", "md5=00", "sha256="),
    ("1000", "sha256=" + "0" * 64, "does not match"),
])
def test_missing_or_wrong_signatures_are_refused(ts: str | None, sig: str | None,
                                                 message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        _verify(b"{}", ts, sig)


def test_a_stale_or_future_timestamp_is_refused_even_when_correctly_signed() -> None:
    for ts in ("600", "1400"):
        with pytest.raises(SignatureError, match="off"):
            _verify(b"{}", ts, sign(SECRET, ts, b"{}"))


def test_the_timestamp_is_part_of_what_is_signed() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        _verify(b"{}", "1001", sign(SECRET, "1000", b"{}"))


# --- multipart ----------------------------------------------------------------------------

DICOM_PART = b"\0" * 128 + b"DICM" + b"\x02\x00" * 200


def _body(parts: list[bytes], boundary: str = "XyZ", close: bool = True) -> bytes:
    out = b"preamble\r\n"
    for p in parts:
        out += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n"
    return out + (f"--{boundary}--\r\nepilogue".encode() if close else b"")


def _feed(body: bytes, size: int) -> MultipartInspector:
    ins = MultipartInspector(b"XyZ")
    for i in range(0, len(body), size):
        ins.feed(body[i:i + size])
    ins.finish()
    return ins


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 131, 132, 133, 1000, 100000])
def test_a_valid_body_passes_whatever_the_chunking(size: int) -> None:
    body = _body([DICOM_PART, DICOM_PART + b"--XyZ" + DICOM_PART, DICOM_PART])
    assert _feed(body, size).parts == 3


@pytest.mark.parametrize("size", [1, 5, 4096])
def test_a_part_that_is_not_dicom_is_named(size: int) -> None:
    body = _body([DICOM_PART, b"hello world" * 20])
    with pytest.raises(MultipartError, match="part 2 is not a DICOM"):
        _feed(body, size)


def test_a_short_part_and_a_missing_close_and_an_empty_body_are_refused() -> None:
    with pytest.raises(MultipartError, match="part 1 is not a DICOM"):
        _feed(_body([b"\0" * 100]), 10)
    with pytest.raises(MultipartError, match="closing delimiter"):
        _feed(_body([DICOM_PART], close=False), 10)
    with pytest.raises(MultipartError, match="no multipart part"):
        _feed(b"nothing here", 4)


def test_a_part_with_another_content_type_is_refused() -> None:
    body = b"--XyZ\r\nContent-Type: text/plain\r\n\r\n" + DICOM_PART + b"\r\n--XyZ--"
    with pytest.raises(MultipartError, match="part 1 has Content-Type text/plain"):
        _feed(body, 50)


@pytest.mark.parametrize(("value", "status", "message"), [
    (None, 415, "missing"),
    ("application/json", 415, "application/json"),
    ('multipart/related; type="application/dicom+json"; boundary=a', 415, r"dicom\+json"),
    ('multipart/related; type="application/dicom"', 400, "boundary"),
])
def test_content_types_are_checked_with_the_right_status(value: str | None, status: int,
                                                         message: str) -> None:
    with pytest.raises(MultipartError, match=message) as info:
        parse_content_type(value)
    assert info.value.http_status == status


def test_the_boundary_is_read_from_the_content_type() -> None:
    assert parse_content_type('multipart/related; type="application/dicom"; boundary="a b"') \
        == b"a b"


# --- STOW responses (PS3.18 10.5.3) -------------------------------------------------------

def _ref(study: str) -> dict[str, Any]:
    return {"00081190": {"vr": "UR", "Value": [
        f"http://pacs/dicom-web/studies/{study}/series/1.2/instances/1.3"]}}


def test_stored_studies_come_from_the_referenced_sop_sequence() -> None:
    body = json.dumps({
        "00081190": {"vr": "UR", "Value": ["http://pacs/dicom-web/studies/1.1"]},
        "00081199": {"vr": "SQ", "Value": [_ref("1.1"), _ref("1.5")]},
        "00081198": {"vr": "SQ", "Value": [_ref("9.9")]},
    }).encode()
    assert stored_studies(body, "application/dicom+json", path_uid=None) == {"1.1", "1.5"}


def test_nothing_stored_means_no_study_even_with_a_path_uid() -> None:
    body = json.dumps({"00081198": {"vr": "SQ", "Value": [_ref("1.1")]}}).encode()
    assert stored_studies(body, "application/dicom+json", path_uid="1.1") == set()
    assert stored_studies(b"garbage", "application/dicom+json", path_uid="1.1") == {"1.1"}


def test_the_xml_response_is_read_too() -> None:
    xml = b"""<?xml version="1.0"?><NativeDicomModel>
      <DicomAttribute tag="00081199" vr="SQ"><Item number="1">
        <DicomAttribute tag="00081190" vr="UR"><Value number="1">http://p/studies/1.7/series/2/instances/3</Value></DicomAttribute>
      </Item></DicomAttribute></NativeDicomModel>"""
    assert stored_studies(xml, "application/dicom+xml", path_uid=None) == {"1.7"}


# --- coalescing ---------------------------------------------------------------------------

class FakeStore:
    def __init__(self) -> None:
        self.marks: list[tuple[str, str, str]] = []

    def mark_due(self, archive: str, uid: str, *, reason: Any, delay: float = 0.0) -> None:
        self.marks.append((archive, uid, str(reason)))


async def test_first_event_syncs_at_once_and_a_burst_gets_one_follow_up() -> None:
    now = [0.0]
    store = FakeStore()
    wake = asyncio.Event()
    c = Coalescer(store, wake=wake, quiet_period=10, max_coalesce=60,  # type: ignore[arg-type]
                  clock=lambda: now[0])
    assert await c.touch("a", "1.2", reason=Reason.STOW) is True
    assert wake.is_set() and len(store.marks) == 1
    for t in (1.0, 2.0, 5.0):
        now[0] = t
        assert await c.touch("a", "1.2", reason=Reason.NOTIFICATION) is False
    assert len(store.marks) == 1
    now[0] = 14.9
    assert await c.flush() == 0
    now[0] = 15.0
    assert await c.flush() == 1
    assert store.marks[-1] == ("a", "1.2", "notification") and c.pending == 0
    now[0] = 16.0
    assert await c.touch("a", "1.2", reason=Reason.STOW) is True  # a new burst


async def test_a_continuous_stream_still_gets_follow_ups_every_max_coalesce() -> None:
    now = [0.0]
    store = FakeStore()
    c = Coalescer(store, wake=asyncio.Event(), quiet_period=10,  # type: ignore[arg-type]
                  max_coalesce=30, clock=lambda: now[0])
    await c.touch("a", "1", reason=Reason.NOTIFICATION)
    flushed = 0
    for t in range(1, 61):
        now[0] = float(t)
        await c.touch("a", "1", reason=Reason.NOTIFICATION)
        flushed += await c.flush()
    assert flushed >= 1


# --- inbound auth and settings ------------------------------------------------------------

def test_bearer_and_basic_credentials_are_checked() -> None:
    auth = InboundAuthSettings(bearer_tokens=[SecretStr("t" * 20)],
                               basic_users={"modality": SecretStr("p" * 20)})
    assert authenticate("Bearer " + "t" * 20, auth) == "bearer-0"
    assert authenticate("Bearer nope", auth) is None
    good = base64.b64encode(b"modality:" + b"p" * 20).decode()
    bad = base64.b64encode(b"modality:wrong").decode()
    assert authenticate(f"Basic {good}", auth) == "modality"
    assert authenticate(f"Basic {bad}", auth) is None
    assert authenticate("Basic !!!", auth) is None
    assert authenticate(None, auth) is None


@pytest.mark.parametrize("realtime", [
    {"webhook_secret": "changeme"},
    {"webhook_secret": "short"},
    {"stow_auth": {"bearer_tokens": ["secret"]}},
    {"stow_auth": {"basic_users": {"x": "password"}}},
    {"delete_policy": "purge"},
])
def test_unsafe_or_unknown_realtime_settings_are_refused(realtime: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises((ConfigError, ValidationError)):
        RealtimeSettings(**realtime)


def test_realtime_defaults() -> None:
    rt = RealtimeSettings()
    assert "realtime" in Settings.model_fields
    assert rt.quiet_period == 10.0 and rt.delete_policy.value == "keep"
    assert rt.webhook_secret is None
