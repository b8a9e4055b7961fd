"""Settings of cross-enterprise sharing (issue 14): whether this site publishes its
studies as XDS-I.b manifests over MHD, where its sharing policy is, the document
registry it publishes to and queries, and the publication worker's pace.  The composition
root hands each part only these.

The manifests' Retrieve URL is the gateway's public WADO-RS root of each archive
(``gateway.public_url``, see bridge.urls.PublicUrls): sharing needs ``gateway.enabled``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from bridge.sections.base import REPO_MAPPINGS, FhirSettings, StrictModel, TaskPace

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
    #: the pace of ``serve``'s publication worker (``share.publish`` tasks)
    worker: TaskPace = TaskPace()

    @model_validator(mode="after")
    def _complete(self) -> SharingSettings:
        if self.enabled and self.registry is None:
            raise ValueError("sharing.enabled needs sharing.registry (the MHD document "
                             "registry's FHIR base)")
        return self
