"""The source's writes translate what the servers answer into the product's error tree
(in-process fakes: httpx.MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bridge.config import ArchiveSettings, FhirSettings
from bridge.errors import ArchiveRejected, ArchiveUnavailable, FhirBusy, FhirRejected
from bridge.fhir.client import FhirClient
from bridge.sharing.publish import ManifestStore, provide
from tests.unit.sharing.mhd_cases import bundle_of

Handler = Callable[[httpx.Request], httpx.Response]
SETTINGS = ArchiveSettings(name="site-a", base_url="http://archive.test/dicom-web")


async def store_with(handler: Handler) -> None:
    async with ManifestStore(SETTINGS, transport=httpx.MockTransport(handler)) as store:
        await store.store(b"DICM-bytes")


async def test_stow_sends_one_multipart_related_part() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"00081199": {"vr": "SQ", "Value": [{}]}})

    await store_with(handler)
    [request] = seen
    assert request.url.path == "/dicom-web/studies"
    assert request.headers["content-type"].startswith(
        'multipart/related; type="application/dicom"; boundary=')
    assert b"\r\nContent-Type: application/dicom\r\n\r\nDICM-bytes\r\n" in request.content


@pytest.mark.parametrize(("status", "body", "error"), [
    (503, None, ArchiveUnavailable),
    (429, None, ArchiveUnavailable),
    (400, None, ArchiveRejected),
    (409, {"00081198": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [272]}}]}},
     ArchiveRejected),
    (202, {"00081198": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [43264]}}]}},
     ArchiveRejected),
])
async def test_stow_failures_are_typed(status: int, body: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        await store_with(lambda _: httpx.Response(status, json=body))
    if body is not None:
        assert "failure reasons:" in str(caught.value)


async def test_an_unreachable_archive_is_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ArchiveUnavailable):
        await store_with(handler)


def registry(handler: Handler) -> FhirClient:
    return FhirClient(FhirSettings(base_url="http://registry.test/fhir"),
                      transport=httpx.MockTransport(handler))


def answer(*statuses: str) -> Handler:
    entries = [{"response": {"status": s, "location": f"X/{n}/_history/1"}}
               for n, s in enumerate(statuses)]
    return lambda _: httpx.Response(200, json={"resourceType": "Bundle",
                                               "type": "transaction-response",
                                               "entry": entries})


async def test_provide_tells_a_new_registration_from_a_retry() -> None:
    async with registry(answer("201 Created", "201 Created", "201 Created")) as fhir:
        outcome = await provide(fhir, bundle_of())
    assert (outcome.document_reference, outcome.created) == ("X/1/_history/1", True)
    async with registry(answer("200 OK", "200 OK", "200 OK")) as fhir:
        assert not (await provide(fhir, bundle_of())).created


async def test_a_short_transaction_response_is_retryable() -> None:
    async with registry(answer("201 Created")) as fhir:
        with pytest.raises(FhirBusy):
            await provide(fhir, bundle_of())


async def test_a_refused_bundle_carries_the_operation_outcome() -> None:
    outcome = {"resourceType": "OperationOutcome",
               "issue": [{"severity": "error", "code": "processing", "diagnostics": "no"}]}
    async with registry(lambda _: httpx.Response(400, json=outcome)) as fhir:
        with pytest.raises(FhirRejected) as caught:
            await provide(fhir, bundle_of())
    assert caught.value.operation_outcome == outcome
