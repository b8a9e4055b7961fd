"""Outside imaging of a local patient (the Imaging Document Consumer's read, I/O): the
EHR Patient's identifiers mapped into the affinity domain by the issuer maps
(:func:`bridge.sharing.identity.affinity_identifiers`), then ITI-67 for each at the
registry (:class:`bridge.sharing.consumer.DocumentConsumer`).

Each study is shown once: documents found under two of the patient's identifiers are
one, and of two current manifests of one study (two sources registered it) the newest
is kept.  A patient with no identifier the maps know has no outside imaging (the bridge
never guesses an identity) and the answer says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.config import FhirSettings
from bridge.sharing.consumer import DocumentConsumer
from bridge.sharing.errors import OutsideDocumentError
from bridge.sharing.find import OutsideDocument
from bridge.sharing.identity import affinity_identifiers
from bridge.sharing.policy import AffinityDomainSection


@dataclass(frozen=True, slots=True)
class OutsideStudies:
    """The outside studies of one patient, newest first, and the documents that could
    not be read (each naming its field)."""

    studies: tuple[OutsideDocument, ...]
    problems: tuple[OutsideDocumentError, ...]
    #: the affinity-domain identifiers asked for (none: the patient is not mapped)
    asked: int


def one_per_study(documents: Iterable[OutsideDocument]) -> list[OutsideDocument]:
    """Documents by id once, then one per Study Instance UID (the newest ``date``),
    newest study first."""
    by_study: dict[str, OutsideDocument] = {}
    for doc in {d.id: d for d in documents}.values():
        kept = by_study.get(doc.study_uid)
        if kept is None or (doc.date or "") > (kept.date or ""):
            by_study[doc.study_uid] = doc
    return sorted(by_study.values(), key=lambda d: (d.study_date or "", d.date or ""),
                  reverse=True)


class OutsideImaging:
    """The outside studies of a patient of this site's EHR, from one registry."""

    def __init__(self, registry: FhirSettings, *, local_systems: Mapping[str, str],
                 domain: AffinityDomainSection) -> None:
        self._registry = registry
        self._local_systems = local_systems
        self._domain = domain

    async def for_patient(self, identifiers: Sequence[Mapping[str, Any]]) -> OutsideStudies:
        """ITI-67 under each of the patient's affinity-domain identifiers."""
        asked = affinity_identifiers(identifiers, local_systems=self._local_systems,
                                     domain=self._domain)
        documents: list[OutsideDocument] = []
        problems: dict[str | None, OutsideDocumentError] = {}
        if asked:
            async with DocumentConsumer(self._registry) as consumer:
                for identifier in asked:
                    found = await consumer.find(identifier)
                    documents += found.documents
                    problems.update((p.document, p) for p in found.problems)
        return OutsideStudies(tuple(one_per_study(documents)), tuple(problems.values()),
                              len(asked))
