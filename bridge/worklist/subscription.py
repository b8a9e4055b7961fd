"""The bridge's own FHIR R4 rest-hook Subscription on the EHR's orders (issue 17): created
at start-up when absent, so the EHR notifies ``/worklist/notify`` of each changed order.

One Subscription per (criteria, endpoint): found by the R4 search parameters ``criteria``
and ``url`` (``Subscription.channel.endpoint``; R4 Subscription has no identifier), created
otherwise (status ``requested``: the server activates it).  ``channel.payload`` is absent
(R4: the notification carries no body, the poll reads what changed); ``channel.header``
carries the credential of ``worklist.notification_auth``, so whoever may read Subscriptions
in the EHR sees that token: give it no other use.
"""

from __future__ import annotations

from typing import Any

from bridge.fhir.client import FhirClient


def subscription_of(*, criteria: str, endpoint: str, token: str) -> dict[str, Any]:
    """The Subscription resource (FHIR R4 Subscription, channel type rest-hook)."""
    return {"resourceType": "Subscription", "status": "requested",
            "reason": "imaging-bridge worklist: changed imaging orders",
            "criteria": criteria,
            "channel": {"type": "rest-hook", "endpoint": endpoint,
                        "header": [f"Authorization: Bearer {token}"]}}


async def ensure_subscription(fhir: FhirClient, *, criteria: str, endpoint: str,
                              token: str) -> str:
    """The id of the EHR's Subscription for ``criteria`` -> ``endpoint``, created if none
    is active or requested."""
    bundle = await fhir.search("Subscription", [("criteria", criteria), ("url", endpoint),
                                                ("status", "active,requested")])
    for entry in bundle.get("entry") or ():
        found = entry.get("resource") or {}
        if found.get("resourceType") == "Subscription" and found.get("criteria") == criteria:
            return str(found.get("id", ""))
    resp = await fhir.request("POST", "Subscription", interaction="worklist-subscribe",
                              json=subscription_of(criteria=criteria, endpoint=endpoint,
                                                   token=token))
    created: dict[str, Any] = resp.json()
    return str(created.get("id", ""))


def order_criteria(category: str) -> str:
    """The criteria of the orders the poller reads (``ServiceRequest?category=...``)."""
    return f"ServiceRequest?category={category}" if category else "ServiceRequest?"
