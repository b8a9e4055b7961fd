"""The sharing decision for one study: publish its manifest or not, and why.

Pure: the policy (mappings/sharing.yaml ``policy``) and the study's facts in, a
:class:`SharingDecision` out.  Exclusions win over a request: a study a site excluded by
modality or confidentiality is never shared, even on demand.  A study with any instance of
an excluded modality is excluded whole, since its manifest must list every instance
(XDS-I.b: the manifest references the study's instances, IHE RAD TF-3 RAD-68).
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.sharing.policy import PolicySection
from bridge.sharing.study import StudyFacts


@dataclass(frozen=True, slots=True)
class SharingDecision:
    """``share`` and a stable, patient-free ``reason`` (logged and recorded)."""

    share: bool
    reason: str


SHARED_BY_DEFAULT = SharingDecision(True, "policy-all")
SHARED_ON_REQUEST = SharingDecision(True, "requested")
NOT_REQUESTED = SharingDecision(False, "on-demand-not-requested")


def decide(policy: PolicySection, study: StudyFacts, *, requested: bool = False) -> SharingDecision:
    """Whether ``study`` is shared under ``policy``; ``requested``: someone asked for it."""
    excluded = sorted(set(study.modalities) & set(policy.exclude_modalities))
    if excluded:
        return SharingDecision(False, f"excluded-modality:{','.join(excluded)}")
    confidential = sorted(set(study.confidentiality_codes)
                          & set(policy.exclude_confidentiality_codes))
    if confidential:
        return SharingDecision(False, f"excluded-confidentiality:{','.join(confidential)}")
    if requested:
        return SHARED_ON_REQUEST
    if policy.mode == "on-demand":
        return NOT_REQUESTED
    return SHARED_BY_DEFAULT
