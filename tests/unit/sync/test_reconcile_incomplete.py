"""Reconcile draws no conclusion of absence from a truncated FHIR search (issue 20 item 2):
some servers stop at ``_count`` with no ``next`` link while ``Bundle.total`` says more
matched."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bridge.archive.client import DicomwebClient
from bridge.config import ArchiveSettings, FhirSettings
from bridge.fhir.client import FhirClient, SearchTally
from bridge.state import open_store
from bridge.sync.assemble import BRIDGE_TAG
from bridge.sync.reconcile import reconcile
from tests.unit.sync.fakes import Clock

UIDS = [f"1.2.826.0.1.3680043.10.1.{i}" for i in range(1, 6)]


def _study(uid: str) -> dict[str, object]:
    return {"0020000D": {"vr": "UI", "Value": [uid]}}


def _imaging_study(uid: str, n: int) -> dict[str, object]:
    return {"resourceType": "ImagingStudy", "id": f"is-{n}", "meta": {"tag": [BRIDGE_TAG]},
            "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{uid}"}]}


def _fhir(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/ImagingStudy") and "identifier" in request.url.params:
        return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})
    # a server that cuts the answer at two entries, says five matched and gives no next link
    entries = [{"resource": _imaging_study(u, i), "search": {"mode": "match"}}
               for i, u in enumerate(UIDS[:2])]
    return httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset",
                                     "total": 5, "entry": entries})


def _archive(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[_study(u) for u in UIDS])


async def test_search_tally_counts_matches_against_bundle_total() -> None:
    client = FhirClient(FhirSettings(base_url="http://fhir.test/fhir"),
                        transport=httpx.MockTransport(_fhir))
    tally = SearchTally()
    async with client:
        found = [r async for r in client.search_all("ImagingStudy", [("_count", "2")],
                                                    tally=tally)]
    assert len(found) == 2 and (tally.total, tally.received, tally.shortfall) == (5, 2, 3)


async def test_a_truncated_fhir_answer_is_reported_not_taken_for_missing_studies(
    tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", clock=Clock())
    for uid in UIDS:
        store.mark_due("arc", uid, reason="manual")
    archive = DicomwebClient(ArchiveSettings(name="arc", base_url="http://archive.test/dw"),
                             transport=httpx.MockTransport(_archive))
    fhir = FhirClient(FhirSettings(base_url="http://fhir.test/fhir"),
                      transport=httpx.MockTransport(_fhir))
    try:
        report = await reconcile(archive=archive, fhir=fhir, store=store)
    finally:
        await archive.aclose()
        await fhir.aclose()
        store.close()
    kinds = [d.kind for d in report.drift]
    assert "incomplete-search" in kinds, json.dumps(report.to_json())
    shortfall = next(d for d in report.drift if d.kind == "incomplete-search")
    assert "5" in shortfall.detail and "2" in shortfall.detail and not shortfall.fixable
