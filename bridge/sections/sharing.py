"""Settings of cross-enterprise sharing (issue 14): whether this site publishes its
studies as XDS-I.b manifests over MHD, where its sharing policy is, and the document
registry it publishes to and queries.  The composition root hands each part only these."""

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

    @model_validator(mode="after")
    def _complete(self) -> SharingSettings:
        if self.enabled and self.registry is None:
            raise ValueError("sharing.enabled needs sharing.registry (the MHD document "
                             "registry's FHIR base)")
        return self
