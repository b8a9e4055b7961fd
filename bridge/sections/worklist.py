"""Settings of the modality worklist (issue 17): whether the bridge serves DICOM Modality
Worklist from the EHR's orders, where it listens, who may ask, which orders it reads and
how often, and its mapping file."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from bridge.sections.base import REPO_MAPPINGS, InboundAuthSettings, StrictModel

__all__ = ["WorklistSettings"]

#: an Application Entity title: 1-16 characters of the default repertoire, no backslash
#: nor control characters (PS3.5 6.2, VR AE)
_AE = r"^[ -\[\]-~]{1,16}$"


class WorklistSettings(StrictModel):
    """``worklist:``: off unless enabled."""

    #: serve DICOM Modality Worklist (C-FIND) built from the EHR's orders
    enabled: bool = False
    #: the order -> worklist item mapping (stations, codes, time zone), validated at start-up
    mapping_file: Path = Field(default_factory=lambda: REPO_MAPPINGS / "worklist.yaml")
    #: the worklist SCP's own AE title (the modalities' "called AE")
    ae_title: str = Field(default="BRIDGE_MWL", pattern=_AE)
    #: the address the SCP listens on (loopback unless the modalities are elsewhere)
    host: str = "127.0.0.1"
    #: the SCP's TCP port (0: the system picks one, for tests)
    port: int = Field(default=11112, ge=0, le=65535)
    #: the calling AE titles (modalities) allowed to associate; the others are rejected
    #: (PS3.8 9.3.4, reason "calling AE title not recognized"); required when enabled
    calling_ae_titles: list[str] = Field(default_factory=list)
    #: the ServiceRequest.category searched for (``system|code``; empty: any category);
    #: default SNOMED CT 363679005 "Imaging"
    order_category: str = "http://snomed.info/sct|363679005"
    #: seconds between two polls of the EHR for changed orders (``_lastUpdated``)
    poll_interval: float = Field(default=10.0, gt=0, le=3600)
    #: ServiceRequests per page of the order search (``_count``)
    page_size: int = Field(default=200, ge=1, le=1000)
    #: seconds the since-cursor is moved back on each poll, so an order committed late
    #: with an earlier ``meta.lastUpdated`` is still read (re-reads cost nothing)
    poll_overlap: float = Field(default=5.0, ge=0, le=3600)
    #: serve orders scheduled at most this many days ago (the SPS start date; older ones
    #: leave the worklist)
    window_days_before: int = Field(default=1, ge=0, le=3650)
    #: serve orders scheduled at most this many days ahead
    window_days_after: int = Field(default=7, ge=0, le=3650)

    #: also be the Modality Performed Procedure Step SCP (N-CREATE / N-SET) on the same
    #: AE, reporting each step to the EHR as a FHIR Procedure basedOn the order (needs the
    #: state store: an open step survives a restart)
    mpps: bool = True
    #: an MPPS COMPLETED also completes the order (ServiceRequest.status), which then
    #: leaves the worklist; DISCONTINUED never does
    complete_order_on_mpps: bool = True
    #: with complete_order_on_mpps: complete the order only once a study of it has come
    #: back linked to it (an ImagingStudy basedOn the order), not on the MPPS alone
    complete_order_needs_study: bool = False
    #: link each study the sync writes to its order by the worklist's Study Instance UID
    #: (task ``worklist.link``: ImagingStudy.basedOn, or listed as a patient mismatch);
    #: costs one or two FHIR searches per synced study, a backfill's included
    link_studies: bool = True
    #: serve the UPS-RS worklist (PS3.18 11: /dicom-web/workitems search, retrieve, change
    #: state, update) over the same orders in ``serve`` (needs ``mpps``: states are kept
    #: as its steps)
    ups: bool = True
    #: who may call the UPS-RS routes (bearer tokens, basic users; none: every call 401)
    ups_auth: InboundAuthSettings = InboundAuthSettings()
    #: who may POST order notifications to ``/worklist/notify`` (the EHR's FHIR R4
    #: rest-hook Subscription on ServiceRequest, its ``channel.header`` carrying the
    #: credential): each one makes the worklist poll at once (none: every call 401)
    notification_auth: InboundAuthSettings = InboundAuthSettings()
    #: create the bridge's FHIR R4 rest-hook Subscription on the orders in the EHR at
    #: start-up when absent (endpoint ``<api public URL>/worklist/notify``, the first token
    #: of notification_auth in its channel.header, readable by who may read Subscriptions)
    subscribe: bool = False
    #: seconds the worklist's task workers (MPPS reports, study links) wait when idle
    tasks_idle: float = Field(default=1.0, gt=0, le=60)

    @field_validator("calling_ae_titles")
    @classmethod
    def _ae_titles(cls, v: list[str]) -> list[str]:
        bad = [t for t in v if not re.fullmatch(_AE, t) or not t.strip()]
        if bad:
            raise ValueError(f"not DICOM AE titles (1-16 characters, no backslash): {bad}")
        return [t.strip() for t in v]

    @field_validator("order_category")
    @classmethod
    def _token(cls, v: str) -> str:
        if v and ("|" not in v or not v.split("|", 1)[1]):
            raise ValueError("a token search value system|code, or empty for any category")
        return v

    @model_validator(mode="after")
    def _who_may_ask(self) -> WorklistSettings:
        if self.enabled and self.subscribe and not self.notification_auth.bearer_tokens:
            raise ValueError("worklist.subscribe: needs a token in "
                             "worklist.notification_auth.bearer_tokens (the Subscription's "
                             "channel.header)")
        if self.enabled and not self.calling_ae_titles:
            raise ValueError("worklist.calling_ae_titles: name the modalities' AE titles "
                             "allowed to query (an empty list would accept every modality)")
        return self
