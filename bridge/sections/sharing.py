"""Settings of cross-enterprise sharing (issue 14): whether this site publishes its
studies as XDS-I.b manifests over MHD, where its sharing policy is, the document
registry it publishes to and queries, and the publication worker's pace.  The composition
root hands each part only these.

The manifests' Retrieve URL is the gateway's public WADO-RS root of each archive
(``gateway.public_url``, see bridge.urls.PublicUrls): sharing needs ``gateway.enabled``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from bridge.sections.base import REPO_MAPPINGS, FhirSettings, StrictModel

__all__ = ["SharingSettings"]


class SharingSettings(StrictModel):
    """``sharing:``: off unless enabled; enabled, a registry is required."""

    #: publish this site's studies to the document registry (XDS-I.b over MHD) and read
    #: the partners' documents from it
    enabled: bool = False
    #: the sharing policy (which studies are shared, XDS metadata codes, the issuer map to
    #: the affinity domain), validated at start-up
    policy_file: Path = Field(default_factory=lambda: REPO_MAPPINGS / "sharing.yaml")
    #: the MHD Document Recipient/Responder (ITI-65, ITI-67, ITI-68): a FHIR R4 server that
    #: need not be the EHR's
    registry: FhirSettings | None = None
    #: create the patient's affinity-domain Patient in the registry (that identifier only,
    #: no demographics) when it has none; off: a publication waits until the network's
    #: patient identity feed registered the patient
    register_patients: bool = False
    #: studies published at once by the publication worker of ``serve``
    workers: int = Field(default=2, ge=1, le=32)
    #: publication tasks claimed per round
    batch: int = Field(default=10, ge=1, le=500)
    #: a claimed publication is given back to the queue after this many seconds
    lease_seconds: float = Field(default=300.0, gt=0)
    #: attempts of a publication that fails for a retryable reason (a concurrent change)
    #: before it is a failure; an outage (registry or archive down) or a patient not yet
    #: in the registry waits however long it lasts
    max_attempts: int = Field(default=8, ge=1)
    #: the first retry's delay in seconds, doubled each attempt up to ``backoff_max``
    backoff_base: float = Field(default=2.0, gt=0)
    #: the longest delay between two attempts of one publication, in seconds
    backoff_max: float = Field(default=900.0, gt=0)
    #: seconds the idle worker waits before looking again (the sync wakes it at once
    #: when it queued publications)
    poll_interval: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> SharingSettings:
        if self.enabled and self.registry is None:
            raise ValueError("sharing.enabled needs sharing.registry (the MHD document "
                             "registry's FHIR base)")
        return self
