"""The bridge's rest-hook Subscription on the orders, against the shared HAPI (it stores
Subscriptions; delivering them needs ``--bridge.subscriptions=resthook``, see
``bench_worklist.py --subscription``): created once, found again at the next start."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bridge.fhir.client import FhirClient
from bridge.sections.base import FhirSettings
from bridge.worklist.subscription import ensure_subscription, order_criteria
from tests.integration.worklist import worklist_ehr as ehr

if TYPE_CHECKING:
    from tests.integration.conftest import Namespace

pytestmark = pytest.mark.integration


async def test_the_subscription_is_created_once_with_its_header(
        ns: Namespace, fhir: httpx.Client, hapi: Any) -> None:
    criteria = order_criteria(f"{ehr.CATEGORY_SYSTEM}|{ns.token}")
    endpoint = f"http://127.0.0.1:9/{ns.token}/worklist/notify"
    async with FhirClient(FhirSettings(base_url=hapi.fhir_url)) as client:
        first = await ensure_subscription(client, criteria=criteria, endpoint=endpoint,
                                          token="notify-token-0123456789")
        again = await ensure_subscription(client, criteria=criteria, endpoint=endpoint,
                                          token="notify-token-0123456789")
    assert first and again == first
    try:
        stored = fhir.get(f"/Subscription/{first}", headers=ehr.FHIR_JSON).json()
        assert stored["criteria"] == criteria
        assert stored["channel"]["type"] == "rest-hook"
        assert stored["channel"]["endpoint"] == endpoint
        assert stored["channel"]["header"] == ["Authorization: Bearer notify-token-0123456789"]
    finally:
        fhir.delete(f"/Subscription/{first}")
