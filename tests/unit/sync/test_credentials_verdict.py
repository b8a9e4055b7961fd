"""When a CLI run must say that nothing could be written because of the credentials
(issue 12 item 14): the FHIR credential check before a run, and the verdict after it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bridge.auth.health import AUTH_HEALTH
from bridge.config import FhirSettings
from bridge.errors import AuthError
from bridge.fhir.client import FhirClient
from bridge.sync.runner import DrainStats
from bridge.sync.service import check_fhir_credentials, nothing_written_reason


@pytest.fixture(autouse=True)
def clean_auth_health() -> Iterator[None]:
    AUTH_HEALTH.clear()
    yield
    AUTH_HEALTH.clear()


def _fhir(status: int) -> FhirClient:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/fhir/metadata"
        return httpx.Response(status, json={"resourceType": "CapabilityStatement"})

    return FhirClient(FhirSettings(base_url="http://ehr.test/fhir"),
                      transport=httpx.MockTransport(answer))


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_credential_is_an_auth_error_naming_the_status(status: int) -> None:
    async with _fhir(status) as fhir:
        with pytest.raises(AuthError, match=f"refused the configured credentials.*{status}"):
            await check_fhir_credentials(fhir)


@pytest.mark.parametrize("status", [200, 404, 503])
async def test_an_outage_or_a_missing_capability_statement_is_left_to_the_sync(
    status: int,
) -> None:
    async with _fhir(status) as fhir:
        await check_fhir_credentials(fhir)


def test_nothing_written_with_an_unresolved_auth_failure_gives_the_reason() -> None:
    AUTH_HEALTH.failed("http://ehr.test/fhir", "invalid_client: unknown key")
    reason = nothing_written_reason(DrainStats(retried=3))
    assert reason == ("credentials refused by http://ehr.test/fhir: "
                      "invalid_client: unknown key")


@pytest.mark.parametrize("stats", [DrainStats(synced=1, retried=3), DrainStats(unchanged=1),
                                   DrainStats()])
def test_no_verdict_when_something_was_written_or_nothing_tried(stats: DrainStats) -> None:
    AUTH_HEALTH.failed("http://ehr.test/fhir", "invalid_client")
    assert nothing_written_reason(stats) is None


def test_no_verdict_when_the_credentials_are_not_the_cause() -> None:
    assert nothing_written_reason(DrainStats(retried=3, failed=1)) is None
