"""A resource a real FHIR R4 server accepts: ``$validate`` with no error or fatal issue
(FHIR R4 OperationOutcome, ``Resource/$validate``), then created (HTTP 201)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx


def _never(diagnostics: str) -> bool:
    return False


def blocking_issues(
    outcome: dict[str, Any], tolerated: Callable[[str], bool] = _never
) -> list[str]:
    """The error and fatal issues of an OperationOutcome, each as ``severity: text @ where``,
    leaving out those whose diagnostics ``tolerated`` accepts."""
    return [
        f"{issue.get('severity')}: {issue.get('diagnostics')} @ {issue.get('expression')}"
        for issue in outcome.get("issue", [])
        if issue.get("severity") in ("error", "fatal")
        and not tolerated(str(issue.get("diagnostics", "")))
    ]


def validate_and_create(
    client: httpx.Client,
    resource: dict[str, Any],
    label: str,
    *,
    tolerated: Callable[[str], bool] = _never,
) -> str:
    """Assert ``resource`` validates and is created on ``client``'s server; its ``Type/id``."""
    kind = resource["resourceType"]
    response = client.post(f"{kind}/$validate", json=resource)
    assert response.status_code in (200, 412), f"{label} {kind}: HTTP {response.status_code}"
    assert blocking_issues(response.json(), tolerated) == [], f"{label} {kind}"
    created = client.post(kind, json=resource)
    assert created.status_code == 201, f"{label} {kind}: {created.status_code} {created.text[:500]}"
    return f"{kind}/{created.json()['id']}"
