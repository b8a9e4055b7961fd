"""Settings of the modality worklist (issue 17): whether the bridge serves DICOM Modality
Worklist from the EHR's orders, where it listens, who may ask, and its mapping file."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bridge.sections.base import REPO_MAPPINGS, StrictModel

__all__ = ["WorklistSettings"]


class WorklistSettings(StrictModel):
    """``worklist:``: off unless enabled."""

    #: serve DICOM Modality Worklist (C-FIND) built from the EHR's orders
    enabled: bool = False
    #: the order -> worklist item mapping (stations, codes, time zone), validated at start-up
    mapping_file: Path = Field(default_factory=lambda: REPO_MAPPINGS / "worklist.yaml")
