"""The study's patient in the affinity domain, by the configured issuer map.

IHE XDS (ITI TF-3 4.2.3.2, DocumentEntry patientId and sourcePatientId): a document's
patientId is the affinity domain's identifier of the patient; the local one travels as
sourcePatientId.  In MHD the former is ``DocumentReference.subject``, the latter
``context.sourcePatientInfo``.  Only
the issuer map of mappings/sharing.yaml is used (a PIXm ITI-83 lookup is a later option);
a patient whose issuer is not mapped is never guessed: :class:`IdentityUnmapped`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bridge.sharing.errors import IdentityUnmapped
from bridge.sharing.policy import AffinityDomainSection
from bridge.sharing.study import StudyFacts

_PATIENT_ID = "(0010,0020) PatientID"
_ISSUER = "(0010,0021) IssuerOfPatientID"


def affinity_identifier(domain: AffinityDomainSection, study: StudyFacts) -> dict[str, Any]:
    """The FHIR Identifier of the study's patient in the affinity domain.

    Looks the issuer up by IssuerOfPatientID (0010,0021), then by the UniversalEntityID of
    IssuerOfPatientIDQualifiersSequence (0010,0024).  Raises IdentityUnmapped naming the
    attribute when the PatientID is absent or its issuer is not in the map.
    """
    if study.patient_id is None:
        raise IdentityUnmapped(f"{_PATIENT_ID} absent: the study's patient cannot be "
                               "identified in the affinity domain", tag=_PATIENT_ID)
    for key in (study.issuer, study.universal_entity_id):
        if key is not None and key in domain.issuers:
            return {"system": domain.issuers[key].system, "value": study.patient_id}
    if study.issuer is None and study.universal_entity_id is None:
        named = "absent"
    else:  # an issuer's name is an organisation's, never the patient's
        shown = study.issuer if study.issuer is not None else study.universal_entity_id
        named = f"{shown!r} is not in affinity_domain.issuers of the sharing policy"
    raise IdentityUnmapped(
        f"{_ISSUER} {named}: the patient's identifier in the affinity domain is unknown "
        "(never guessed); add the issuer to mappings/sharing.yaml affinity_domain.issuers",
        tag=_ISSUER,
    )


def affinity_identifiers(
    identifiers: Iterable[Mapping[str, Any]],
    *,
    local_systems: Mapping[str, str],
    domain: AffinityDomainSection,
) -> list[dict[str, str]]:
    """A local patient's identifiers (the EHR Patient's, FHIR) in the affinity domain: an
    identifier whose system is the main mapping's system of an issuer (``local_systems``:
    issuer -> system, mappings ``patient.issuers``) that the issuer map knows, under the
    affinity domain's system for that issuer, same value; one already in an affinity
    system, as it is.  Others are left out (never guessed); order kept, no duplicates."""
    by_local = {system: domain.issuers[issuer].system
                for issuer, system in local_systems.items() if issuer in domain.issuers}
    affinity = {issuer.system for issuer in domain.issuers.values()}
    found: list[dict[str, str]] = []
    for ident in identifiers:
        system, value = ident.get("system"), ident.get("value")
        if not isinstance(system, str) or not isinstance(value, str) or not value:
            continue
        mapped = system if system in affinity else by_local.get(system)
        if mapped is not None and {"system": mapped, "value": value} not in found:
            found.append({"system": mapped, "value": value})
    return found
