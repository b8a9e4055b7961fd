"""The consumer's client: ITI-67 pages followed, ITI-68 checked against the registered
size and hash, and what the registry answers translated into the product's error tree
(in-process fakes: httpx.MockTransport)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from bridge.config import FhirSettings
from bridge.errors import Conflict, FhirBusy, FhirRejected, Outage, Permanent
from bridge.sharing.consumer import DocumentConsumer
from bridge.sharing.errors import ManifestFormatError, OutsideDocumentError
from bridge.sharing.find import read_document
from bridge.sharing.kos import manifest_part10
from tests.unit.sharing.find_cases import PATIENT, searchset, stored_document
from tests.unit.sharing.kos_cases import read_golden

Handler = Callable[[httpx.Request], httpx.Response]
SETTINGS = FhirSettings(base_url="http://registry.test/fhir")


def consumer(handler: Handler) -> DocumentConsumer:
    return DocumentConsumer(SETTINGS, transport=httpx.MockTransport(handler))


async def test_find_sends_iti67_and_follows_next_links() -> None:
    seen: list[httpx.Request] = []
    second_page = "http://registry.test/fhir?_getpages=abc&_getpagesoffset=1"

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "_getpages" in str(request.url):
            return httpx.Response(200, json=searchset(stored_document("doc-2")))
        page = searchset(stored_document("doc-1"))
        page["link"] = [{"relation": "next", "url": second_page}]
        return httpx.Response(200, json=page)

    async with consumer(handler) as client:
        found = await client.find(PATIENT, modalities=["CR"])
    assert [d.id for d in found.documents] == ["doc-1", "doc-2"]
    first, second = seen
    assert first.url.path == "/fhir/DocumentReference"
    assert first.url.params["patient.identifier"] == f"{PATIENT['system']}|IHE-1"
    assert first.url.params["status"] == "current"
    assert first.url.params["event"].endswith("|CR")
    assert first.headers["accept"] == "application/fhir+json"
    assert first.headers["cache-control"] == "no-cache"  # not HAPI's minute-old answer
    assert str(second.url) == second_page


def _kos() -> tuple[bytes, dict[str, Any]]:
    part10 = manifest_part10(read_golden("kos_seed7_study1.json"))
    document = stored_document()
    attachment = document["content"][0]["attachment"]
    attachment.update(url="http://registry.test/fhir/Binary/kos-1", size=len(part10),
                      hash=base64.b64encode(hashlib.sha1(part10).digest()).decode())
    return part10, document


async def test_retrieve_gets_the_attachment_and_reads_the_manifest() -> None:
    part10, document = _kos()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=part10,
                              headers={"Content-Type": "application/dicom"})

    async with consumer(handler) as client:
        manifest = await client.manifest(read_document(document))
    [request] = seen
    assert request.url.path == "/fhir/Binary/kos-1"
    assert request.headers["accept"] == "application/dicom"
    assert manifest.sop_instance_uid == read_golden("kos_seed7_study1.json")["00080018"][
        "Value"][0]


@pytest.mark.parametrize(("body", "field"), [
    (lambda b: b + b"\0\0", "content[0].attachment.size"),
    (lambda b: b[:-2] + b"XX", "content[0].attachment.hash"),
])
async def test_retrieved_bytes_other_than_the_registered_ones_are_refused(
    body: Callable[[bytes], bytes], field: str
) -> None:
    part10, document = _kos()
    async with consumer(lambda r: httpx.Response(200, content=body(part10))) as client:
        with pytest.raises(OutsideDocumentError) as caught:
            await client.retrieve(read_document(document))
    assert caught.value.field == field


async def test_a_body_that_is_not_a_manifest_is_a_manifest_format_error() -> None:
    _, document = _kos()
    del document["content"][0]["attachment"]["size"]
    del document["content"][0]["attachment"]["hash"]
    async with consumer(lambda r: httpx.Response(200, content=b"<html/>")) as client:
        with pytest.raises(ManifestFormatError):
            await client.manifest(read_document(document))


@pytest.mark.parametrize(("answer", "error"), [
    (httpx.Response(503, headers={"Retry-After": "7"}), FhirBusy),
    (httpx.Response(429), FhirBusy),
    (httpx.Response(412), Conflict),
    (httpx.Response(400, json={"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "bad parameter"}]}),
     FhirRejected),
    (httpx.Response(404), FhirRejected),
])
async def test_registry_answers_are_translated_into_the_error_tree(
    answer: httpx.Response, error: type[Exception]
) -> None:
    async with consumer(lambda r: answer) as client:
        with pytest.raises(error) as caught:
            await client.find(PATIENT)
    if isinstance(caught.value, FhirBusy):
        assert isinstance(caught.value, Outage)
        assert caught.value.retry_after == (7.0 if answer.status_code == 503 else None)
    if isinstance(caught.value, FhirRejected):
        assert isinstance(caught.value, Permanent)
        assert caught.value.status_code == answer.status_code


async def test_an_unreachable_registry_is_an_outage() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    _, document = _kos()
    async with consumer(handler) as client:
        with pytest.raises(FhirBusy, match="mhd-retrieve"):
            await client.retrieve(read_document(document))


async def test_an_attachment_on_another_host_is_not_sent_the_registry_s_credentials() -> None:
    _, document = _kos()
    document["content"][0]["attachment"]["url"] = "http://elsewhere.test/fhir/Binary/kos-1"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with consumer(handler) as client:
        with pytest.raises(OutsideDocumentError) as caught:
            await client.retrieve(read_document(document))
    assert (caught.value.field, seen) == ("content[0].attachment.url", [])


async def test_a_relative_attachment_url_is_retrieved_from_the_registry() -> None:
    part10, document = _kos()
    document["content"][0]["attachment"]["url"] = "Binary/kos-1"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=part10)

    async with consumer(handler) as client:
        assert await client.retrieve(read_document(document)) == part10
    assert str(seen[0].url) == "http://registry.test/fhir/Binary/kos-1"
