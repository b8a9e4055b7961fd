"""The ITI-67 test cases: the source's DocumentReference as a registry answers it."""

from __future__ import annotations

import copy
from typing import Any

from bridge.sharing.mhd import document_entry
from tests.unit.sharing.mhd_cases import bundle_of

PATIENT = {"system": "urn:oid:1.3.6.1.4.1.21367.13.20.1000", "value": "IHE-1"}


def stored_document(ident: str = "doc-1") -> dict[str, Any]:
    """The source's DocumentReference as the registry would answer it (with an id)."""
    document = copy.deepcopy(document_entry(bundle_of())["resource"])
    document["id"] = ident
    return document


def searchset(*documents: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(documents),
            "entry": [{"resource": d, "search": {"mode": "match"}} for d in documents]}
