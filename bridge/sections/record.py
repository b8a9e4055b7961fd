"""Settings of the longitudinal record (issue 16): whether the sync also maps the reports
and radiation dose SRs it finds in a study, the dose rules it applies, and the pace of the
``record.map`` worker of ``serve``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from bridge.sections.base import REPO_MAPPINGS, StrictModel, TaskPace

__all__ = ["RecordSettings"]


class RecordSettings(StrictModel):
    """``record:``: off unless enabled."""

    #: map the report and radiation dose SRs of each synced study to DiagnosticReport and
    #: Observation resources (a ``record.map`` task queued per study the sync writes, run
    #: by ``serve``)
    enabled: bool = False
    #: which dose items become Observation components, their units and physical ranges
    dose_rules_file: Path = Field(
        default_factory=lambda: REPO_MAPPINGS / "record" / "dose_items.json")
    #: the pace of ``serve``'s record worker (``record.map`` tasks)
    worker: TaskPace = TaskPace()

    @model_validator(mode="after")
    def _rules_file_exists(self) -> RecordSettings:
        # checked at start-up when the room runs; its content is read by the room's
        # builder (bridge.assembly.record_service), which names what is wrong inside
        if self.enabled and not self.dose_rules_file.is_file():
            raise ValueError(f"record.dose_rules_file: no file at {self.dose_rules_file}")
        return self
