"""Settings of the longitudinal record (issue 16): whether the sync also maps the reports
and radiation dose SRs it finds in a study, and the dose rules it applies."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from bridge.sections.base import REPO_MAPPINGS, StrictModel

__all__ = ["RecordSettings"]


class RecordSettings(StrictModel):
    """``record:``: off unless enabled."""

    #: map the report and radiation dose SRs of each synced study to DiagnosticReport and
    #: Observation resources
    enabled: bool = False
    #: which dose items become Observation components, their units and physical ranges
    dose_rules_file: Path = Field(
        default_factory=lambda: REPO_MAPPINGS / "record" / "dose_items.json")
