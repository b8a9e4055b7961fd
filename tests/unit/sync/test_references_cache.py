"""How long the sync keeps what it looked up (issue 18: on an injected clock): a found
ServiceRequest for the resolver's ttl, a "not found" for 30 s at most (the EHR may register
it any minute), and a batch's answers stay readable for that batch however small the bound
or however long the batch takes."""

from __future__ import annotations

import httpx

from bridge.clock import ManualClock
from bridge.config import FhirSettings
from bridge.fhir.client import FhirClient
from bridge.sync.references import NEGATIVE_TTL, ReferenceResolver
from tests.unit.sync.test_references_or_search import SYS, Ehr


def _resolver(ehr: Ehr, clock: ManualClock, **options: int) -> ReferenceResolver:
    fhir = FhirClient(FhirSettings(base_url="http://ehr.test/fhir"),
                      transport=httpx.MockTransport(ehr.handler))
    return ReferenceResolver(fhir, ttl=300.0, clock=clock, **options)


async def test_a_found_reference_is_kept_for_the_ttl_a_missing_one_for_30_seconds() -> None:
    clock, ehr = ManualClock(), Ehr({"ACC1": ["sr-1"]})
    resolver = _resolver(ehr, clock)
    found, missing = (SYS, "ACC1"), (SYS, "ACC2")
    await resolver.prefetch([], [found, missing])
    assert len(ehr.searches) == 1
    ehr.known["ACC2"] = ["sr-2"]  # registered at the EHR meanwhile
    clock.advance(NEGATIVE_TTL - 1)
    await resolver.prefetch([], [found, missing])
    assert len(ehr.searches) == 1  # both still cached
    assert resolver.service_request(missing) is None
    clock.advance(1)
    await resolver.prefetch([], [found, missing])
    assert ehr.searches[1:] == [["ACC2"]]  # only the negative answer is asked again
    assert resolver.service_request(missing) == "ServiceRequest/sr-2"
    clock.advance(300 - NEGATIVE_TTL - 1)
    await resolver.prefetch([], [found])
    assert len(ehr.searches) == 2
    clock.advance(1)  # 300 s since ACC1 was found
    await resolver.prefetch([], [found])
    assert ehr.searches[2:] == [["ACC1"]]


async def test_a_batch_keeps_its_answers_beyond_the_bound_and_past_their_ttl() -> None:
    clock = ManualClock()
    ehr = Ehr({f"ACC{i}": [f"sr-{i}"] for i in range(5)})
    resolver = _resolver(ehr, clock, max_entries=2)
    keys = [(SYS, f"ACC{i}") for i in range(5)]
    await resolver.prefetch([], keys)  # five answers in a cache of two
    clock.advance(3600)  # a slow batch: its answers have expired meanwhile
    assert [resolver.service_request(k) for k in keys] == [f"ServiceRequest/sr-{i}"
                                                           for i in range(5)]
    await resolver.prefetch([], [(SYS, "ACC0")])  # the next batch: back within the bound
    assert resolver.service_request((SYS, "ACC0")) == "ServiceRequest/sr-0"
    assert sum(resolver.service_request(k) is not None for k in keys) == 2
