"""The consumer's look-up of a local patient's outside studies: the EHR identifiers into
the affinity domain by the issuer maps (never guessed), one row per study."""

from __future__ import annotations

from bridge.sharing.find import OutsideDocument
from bridge.sharing.identity import affinity_identifiers
from bridge.sharing.outside import one_per_study
from tests.unit.sharing.sharing_helpers import policy

EHR_A = "https://hospital-a.example.org/fhir/sid/mrn"
EHR_B = "https://hospital-b.example.org/fhir/sid/mrn"
NET_A = "https://health-network.example.org/fhir/sid/hospital-a-mrn"
NET_B = "https://health-network.example.org/fhir/sid/hospital-b-mrn"
LOCAL = {"HOSP_A": EHR_A, "HOSP_B": EHR_B, "HOSP_C": "https://c.example.org/mrn"}


def test_ehr_identifiers_map_to_the_affinity_domain_by_issuer_and_others_are_left_out(
) -> None:
    domain = policy().affinity_domain
    found = affinity_identifiers([
        {"system": EHR_B, "value": "B-1"},
        {"system": "https://c.example.org/mrn", "value": "C-1"},  # issuer not in the map
        {"system": "urn:other", "value": "X"},  # no issuer at all
        {"value": "no-system"},
        {"system": NET_A, "value": "A-1"},  # already the network's
        {"system": EHR_B, "value": "B-1"},  # a duplicate
    ], local_systems=LOCAL, domain=domain)
    assert found == [{"system": NET_B, "value": "B-1"}, {"system": NET_A, "value": "A-1"}]
    assert affinity_identifiers([{"system": "urn:other", "value": "X"}],
                                local_systems=LOCAL, domain=domain) == []


def doc(doc_id: str, study_uid: str, date: str, study_date: str | None) -> OutsideDocument:
    return OutsideDocument(id=doc_id, source=None, date=date, study_date=study_date,
                           study_uid=study_uid, modalities=(), master_identifier=None,
                           attachment_url="Binary/x", mime_type=None, size=None, hash=None)


def test_each_study_is_listed_once_newest_manifest_kept_newest_study_first() -> None:
    rows = one_per_study([
        doc("d1", "1.1", "2026-01-01T00:00:00Z", "2020-01-01"),
        doc("d2", "1.2", "2026-01-02T00:00:00Z", "2024-05-05"),
        doc("d3", "1.1", "2026-02-01T00:00:00Z", "2020-01-01"),  # same study, newer
        doc("d2", "1.2", "2026-01-02T00:00:00Z", "2024-05-05"),  # found twice
    ])
    assert [r.id for r in rows] == ["d2", "d3"]
