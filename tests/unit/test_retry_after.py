"""Retry-After (RFC 9110 10.2.3) read one way by every client: delay-seconds or HTTP-date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings
from bridge.errors import ArchiveUnavailable, FhirBusy
from bridge.fhir.client import classify
from bridge.retry_after import parse_retry_after

NOW = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0),
    (" 7 ", 7.0),
    ("1.5", 1.5),
    ("Wed, 21 Oct 2015 07:30:00 GMT", 120.0),      # IMF-fixdate (RFC 9110 5.6.7)
    ("Wednesday, 21-Oct-15 07:29:00 GMT", 60.0),   # obsolete RFC 850 form
    ("Wed Oct 21 07:29:30 2015", 90.0),            # obsolete asctime form
    ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),        # a date in the past: now
])
def test_delay_seconds_and_http_dates_are_read(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "nan", "inf", "1e3"])
def test_anything_else_is_no_hint(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def _in(seconds: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


def test_fhir_busy_honours_an_http_date() -> None:
    error = classify(503, None, {"Retry-After": _in(600)}, "a batch")
    assert isinstance(error, FhirBusy)
    assert error.retry_after is not None and 590 <= error.retry_after <= 600


async def test_archive_unavailable_honours_an_http_date() -> None:
    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": _in(600)})

    settings = ArchiveSettings(name="pacs", base_url="http://archive.test/dicom-web",
                               auth={"kind": "none"})
    async with DicomwebClient(settings, transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(ArchiveUnavailable) as caught:
            await client.search_studies()
    assert caught.value.retry_after is not None and 590 <= caught.value.retry_after <= 600
